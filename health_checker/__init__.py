"""Job registry, worker pool, fenced assignment; drives the parent-order saga."""
