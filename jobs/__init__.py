"""Restore jobs: job and task records, scheduling on Dask, resumption, progress."""
