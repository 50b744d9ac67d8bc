"""The control plane's store: SQLAlchemy models, engine/session helpers, Alembic migrations."""
