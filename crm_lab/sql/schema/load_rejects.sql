-- Rows a load refused, with where they were and why. line is the 1-based line in a CSV or
-- JSON Lines file (the header is line 1 of a CSV) and the 1-based row number in a Parquet file.
CREATE TABLE IF NOT EXISTS load_rejects (
    load_id         BIGINT NOT NULL,
    file            VARCHAR NOT NULL,
    table_name      VARCHAR NOT NULL,
    line            BIGINT,
    column_name     VARCHAR,
    value           VARCHAR,
    reason          VARCHAR NOT NULL
);
