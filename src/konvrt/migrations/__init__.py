"""Alembic migrations for Konvrt's database; run them with `konvrt db upgrade` (see `konvrt.schema`)."""
