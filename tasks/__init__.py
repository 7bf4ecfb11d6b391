"""Prefect tasks: one per registered stage, thin wrappers around :mod:`kositp.pipeline`."""
