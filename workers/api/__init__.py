"""The HTTP API (FastAPI): enqueue and look up messages, receive provider webhooks.

uvicorn "wadispatch.api:create_app" --factory      # or: wadispatch api
"""

from wadispatch.api.app import create_app

__all__ = ["create_app"]
