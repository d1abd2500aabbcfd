"""API keys: made here, stored hashed in the ledger, checked on every ``/v1`` request.

A key is ``wad_`` + 43 URL-safe characters (256 random bits). The ledger keeps its SHA-256 (a key
that random needs no slow hash) and its first 12 characters, to tell keys apart in listings. The
key itself is shown once, when it is created.

Send it as ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from wadispatch.api.errors import ApiError
from wadispatch.ledger import ApiKeyRecord, Ledger

KEY_PREFIX = "wad_"
SHOWN_PREFIX_LENGTH = 12

_bearer = HTTPBearer(auto_error=False, description="`Authorization: Bearer <key>`")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description="`X-API-Key: <key>`")


def new_api_key() -> str:
    """A fresh random key."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(ledger: Ledger, name: str) -> tuple[str, str]:
    """Make and store a key; return ``(key id, key)``. The key is not stored and not shown again."""
    key = new_api_key()
    key_id = ledger.add_api_key(name, hash_api_key(key), key[:SHOWN_PREFIX_LENGTH])
    return key_id, key


def check_api_key(ledger: Ledger, key: str | None) -> ApiKeyRecord:
    """The key's record, or a 401 (missing, unknown or revoked key: the same answer for all)."""
    if not key:
        raise ApiError(401, "unauthorized", "an API key is required: Authorization: Bearer <key>")
    digest = hash_api_key(key)
    record = ledger.find_api_key(digest)
    if record is None or not hmac.compare_digest(record.key_hash, digest):
        raise ApiError(401, "unauthorized", "the API key is not valid (unknown or revoked)")
    return record


def require_api_key(
    request: Request,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header: Annotated[str | None, Security(_header)],
) -> ApiKeyRecord:
    """FastAPI dependency: the caller's key, or 401."""
    key = bearer.credentials if bearer is not None else header
    return check_api_key(request.app.state.ledger, key)


ApiKey = Annotated[ApiKeyRecord, Depends(require_api_key)]
