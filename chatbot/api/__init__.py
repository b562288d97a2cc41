"""The public REST API under /api/v1/: tokens, the call log, idempotency and the endpoints."""
