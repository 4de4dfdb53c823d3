"""Alembic migrations of the registry schema (run through `service.registry.migrate`)."""
