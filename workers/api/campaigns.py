"""Campaign routes (``/v1/campaigns``): bulk sends from a CSV or JSONL upload and a template.

The campaign module adds its endpoints to this router; :func:`workers.api.app.create_app` already
includes it, behind the same API key as the message routes.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends

from workers.api.auth import require_api_key

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"], dependencies=[Depends(require_api_key)])
