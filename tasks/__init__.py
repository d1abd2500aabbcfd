"""Celery tasks: thin glue that loads, calls the engine, and lets Celery wait."""
