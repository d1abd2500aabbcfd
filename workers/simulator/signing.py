"""Webhook signatures, with the standard library only.

- Meta: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``
- Briq: ``X-Briq-Signature: <hex HMAC-SHA256(webhook secret, raw body)>``
- Bird: ``MessageBird-Signature-JWT: <JWT, HS256, signing key>`` with the claims ``iss``
  ("MessageBird"), ``nbf``, ``exp`` (5 minutes), ``jti``, ``url_hash`` (hex SHA-256 of the URL) and
  ``payload_hash`` (hex SHA-256 of the raw body; left out when the body is empty). An HS256 JWT is a
  few lines, so PyJWT is not needed; any JWT library verifies it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from typing import Any

BIRD_JWT_LIFETIME_SECONDS = 300


def hmac_sha256_hex(secret: str, raw: bytes) -> str:
    """Hex HMAC-SHA256 of ``raw`` keyed by ``secret``."""
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def hs256_jwt(claims: dict[str, Any], key: str) -> str:
    """A compact JWS of ``claims`` signed with HMAC-SHA256."""
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}".encode("ascii")
    signature = hmac.new(key.encode(), signing_input, hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64url(signature)}"


def bird_signature_jwt(key: str, url: str, raw: bytes, now: float) -> str:
    """The ``MessageBird-Signature-JWT`` value for a webhook POST of ``raw`` to ``url``."""
    issued = int(now)
    claims: dict[str, Any] = {
        "iss": "MessageBird",
        "nbf": issued,
        "exp": issued + BIRD_JWT_LIFETIME_SECONDS,
        "jti": str(uuid.uuid4()),
        "url_hash": hashlib.sha256(url.encode()).hexdigest(),
    }
    if raw:
        claims["payload_hash"] = hashlib.sha256(raw).hexdigest()
    return hs256_jwt(claims, key)
