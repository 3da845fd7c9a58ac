"""Persistence: the state DB (SQLAlchemy + Alembic), secrets, audit log, tenant spec files."""
