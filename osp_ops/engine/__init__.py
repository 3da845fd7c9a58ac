"""The operations engine: operations as ordered, idempotent, recorded steps."""
