"""Prefect flows: the pipeline (full rebuild, nightly retrain, single-stage rerun, demo)."""
