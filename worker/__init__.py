"""Execution workers: policies turn ticks into child-order actions on per-job topics."""
