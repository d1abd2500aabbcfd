"""Checking that a webhook comes from the provider. Pure: no I/O; secrets never in messages.

- Meta: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256(app secret, raw body)>``
- Briq: ``X-Briq-Signature: <hex HMAC-SHA256(webhook secret, raw body)>``
- Bird: ``MessageBird-Signature-JWT``: an HS256 JWT (signing key) whose claims hold the issuer
  ``MessageBird``, ``nbf``/``exp``, and the hex SHA-256 of the URL (``url_hash``) and of the body
  (``payload_hash``, absent for an empty body); the token lives a few minutes, so one whose
  lifetime (``exp`` - ``nbf``, or ``exp`` - ``iat``) is longer than ``max_lifetime`` is refused
- Zixflow, WA.cr (neither signs): a secret of our own as the last part of the webhook URL
"""

from __future__ import annotations

import hashlib
import hmac
import math
import warnings
from collections.abc import Mapping

import jwt
from wadispatch.errors import SignatureError

#: Clock difference tolerated on Bird's ``nbf`` / ``exp``.
BIRD_LEEWAY_SECONDS = 60
#: Default longest lifetime of a Bird token (``WADISPATCH_BIRD_JWT_MAX_LIFETIME_SECONDS``).
BIRD_MAX_LIFETIME_SECONDS = 300


def hmac_sha256_hex(secret: str, raw: bytes) -> str:
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def verify_meta(headers: Mapping[str, str], raw: bytes, app_secret: str) -> None:
    given = headers.get("x-hub-signature-256", "")
    if not given:
        raise SignatureError("X-Hub-Signature-256 is missing")
    expected = "sha256=" + hmac_sha256_hex(app_secret, raw)
    if not hmac.compare_digest(given.strip().lower().encode(), expected.encode()):
        raise SignatureError("X-Hub-Signature-256 does not match the body")


def verify_briq(headers: Mapping[str, str], raw: bytes, secret: str) -> None:
    given = headers.get("x-briq-signature", "")
    if not given:
        raise SignatureError("X-Briq-Signature is missing")
    expected = hmac_sha256_hex(secret, raw)
    if not hmac.compare_digest(given.strip().lower().removeprefix("sha256=").encode(), expected.encode()):
        raise SignatureError("X-Briq-Signature does not match the body")


def verify_bird(
    headers: Mapping[str, str],
    raw: bytes,
    url: str,
    signing_key: str,
    now: float,
    *,
    max_lifetime: float = BIRD_MAX_LIFETIME_SECONDS,
) -> None:
    """Check Bird's ``MessageBird-Signature-JWT``: signed with ``signing_key``, issued by
    MessageBird, valid at ``now``, living at most ``max_lifetime`` seconds, for this URL and body."""
    token = headers.get("messagebird-signature-jwt", "")
    if not token:
        raise SignatureError("MessageBird-Signature-JWT is missing")
    try:
        with warnings.catch_warnings():
            # Bird's signing key is Bird's to choose: a short one is no reason to warn on every webhook.
            warnings.simplefilter("ignore", jwt.InsecureKeyLengthWarning)
            claims = jwt.decode(
                token.strip(),
                signing_key,
                algorithms=["HS256"],
                issuer="MessageBird",
                leeway=BIRD_LEEWAY_SECONDS,
                options={"require": ["iss", "exp"], "verify_iat": False},
            )
    except jwt.ExpiredSignatureError:
        raise SignatureError("MessageBird-Signature-JWT has expired") from None
    except (jwt.PyJWTError, OverflowError) as exc:  # OverflowError: a time of Infinity
        raise SignatureError(f"MessageBird-Signature-JWT is not valid: {type(exc).__name__}") from None
    lifetime = _lifetime(claims)
    if lifetime is None:
        raise SignatureError("MessageBird-Signature-JWT has no nbf (or iat) to measure its lifetime")
    if lifetime > max_lifetime:
        raise SignatureError(
            f"MessageBird-Signature-JWT lives {lifetime:.0f} s, longer than the {max_lifetime:.0f} s allowed"
        )
    if not hmac.compare_digest(str(claims.get("url_hash", "")), hashlib.sha256(url.encode()).hexdigest()):
        raise SignatureError("MessageBird-Signature-JWT was signed for another URL")
    expected_body = hashlib.sha256(raw).hexdigest() if raw else ""
    if not hmac.compare_digest(str(claims.get("payload_hash", "")), expected_body):
        raise SignatureError("MessageBird-Signature-JWT does not match the body")


def _lifetime(claims: Mapping[str, object]) -> float | None:
    """``exp`` - ``nbf`` (``exp`` - ``iat`` without ``nbf``), or None when they are not numbers."""
    expires, start = claims.get("exp"), claims.get("nbf", claims.get("iat"))
    if any(isinstance(value, bool) or not isinstance(value, int | float) for value in (expires, start)):
        return None
    lifetime = float(expires) - float(start)  # type: ignore[arg-type]
    return lifetime if math.isfinite(lifetime) else None


def verify_url_secret(given: str | None, secret: str) -> None:
    if not given:
        raise SignatureError("the webhook URL lacks its secret part (/webhooks/<provider>/<secret>)")
    if not hmac.compare_digest(given.encode(), secret.encode()):
        raise SignatureError("the webhook URL's secret part is wrong")
