"""Batch reports: papermill runs the analysts' notebooks from a pipeline spec, in a process pool
or on a Dask cluster, writing executed notebooks, self-contained HTML, an index and a ledger."""

from crm_lab.batch.run import BatchResult, run_batch
from crm_lab.batch.spec import PipelineSpec, RunSpec, load_spec

__all__ = ["BatchResult", "PipelineSpec", "RunSpec", "load_spec", "run_batch"]
