"""Guards for work that does not come through the HTTP middleware: Celery, Channels."""
