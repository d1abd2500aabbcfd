"""Masking of personal data for logs and task arguments. Pure."""

from __future__ import annotations


def mask_phone(phone: str | None) -> str:
    """``+255712345678`` → ``+2557*****678``: enough to tell numbers apart, not to dial one."""
    if not phone:
        return "-"
    keep_head = 5 if phone.startswith("+") else 4
    if len(phone) <= keep_head + 3:
        return "*" * len(phone)
    return phone[:keep_head] + "*" * (len(phone) - keep_head - 3) + phone[-3:]


REDACTED = "[redacted]"


def scrub_secrets(text: str | None, secrets: list[str]) -> str | None:
    """``text`` with every occurrence of these secrets replaced (a provider may echo a key back)."""
    if not text:
        return text
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    return text
