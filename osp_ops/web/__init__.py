"""The self-service web form and status pages (FastAPI)."""
