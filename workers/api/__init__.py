"""The HTTP API (FastAPI): enqueue and look up messages, receive provider webhooks.

uvicorn "workers.api:create_app" --factory      # or: wadispatch api
"""

from workers.api.app import create_app

__all__ = ["create_app"]
