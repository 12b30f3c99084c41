-- One row per notebook run of a batch (crm-lab batch), written by the batch's single writer.
-- Its stored results carry its run_id: run_id (plan_id) = report_runs.run_id, or that id + "/<name>".
-- key: run_id
CREATE TABLE IF NOT EXISTS report_runs (
    run_id          VARCHAR NOT NULL,      -- batch_id/run_name
    batch_id        VARCHAR NOT NULL,
    pipeline        VARCHAR NOT NULL,
    run_name        VARCHAR NOT NULL,
    notebook        VARCHAR NOT NULL,
    company_id      VARCHAR,               -- the run's `company` parameter, else the one company of its stored results
    parameters      JSON,
    status          VARCHAR NOT NULL,      -- 'ok' or 'failed' (a run a stop cut short is not recorded: --retry-failed reruns it)
    started_at      TIMESTAMPTZ,
    seconds         DOUBLE,
    error           VARCHAR,
    output_notebook VARCHAR,
    output_html     VARCHAR,
    results_dir     VARCHAR,
    input_fingerprint VARCHAR,             -- of the data the run read; NULL when it changed while the run read it
    crm_lab_version VARCHAR
);
