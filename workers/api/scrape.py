"""``GET /metrics``: the API process's Prometheus metrics (README "Monitoring").

Outside ``/v1`` and without an API key: Prometheus scrapes without credentials, and the metrics
hold no message id, phone number or secret. Not in the OpenAPI document (no part of the product's
API). ``WADISPATCH_API_METRICS=false`` removes it where the API's port is public.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response
from wadispatch import metrics
from wadispatch.settings import Settings


def add_metrics(app: FastAPI, settings: Settings) -> None:
    """Serve ``/metrics`` on ``app`` (with the queue's depth and the campaigns read at scrape time),
    unless turned off."""
    if not settings.api_metrics:
        return
    metrics.watch_queue(settings)
    metrics.watch_campaigns(settings)

    @app.get("/metrics", include_in_schema=False)
    def prometheus_metrics(request: Request) -> Response:
        body, content_type = metrics.metrics_response(request.headers.get("accept"))
        return Response(content=body, media_type=content_type)
