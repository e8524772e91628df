"""Saga orchestration: definitions, persisted log, compensations, idempotency, fencing (issue 5)."""
