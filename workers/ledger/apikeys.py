"""HTTP API keys in the ledger: stored as hashes, listed, revoked."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select, update
from wadispatch.ledger.database import Database
from wadispatch.ledger.records import aware, utcnow
from wadispatch.ledger.schema import api_keys


@dataclass(frozen=True)
class ApiKeyRecord:
    """One HTTP API key, without the key: its id, name, first characters and lifetime."""

    id: str
    name: str
    key_hash: str
    prefix: str
    created_at: datetime
    revoked_at: datetime | None


class ApiKeys(Database):
    """The HTTP API's keys (the key itself is never stored, only its SHA-256)."""

    def add_api_key(self, name: str, key_hash: str, prefix: str, *, now: datetime | None = None) -> str:
        """Store a new API key's hash; return the key's id."""
        key_id = str(uuid.uuid4())
        with self.begin() as conn:
            conn.execute(
                insert(api_keys),
                {
                    "id": key_id,
                    "name": name,
                    "key_hash": key_hash,
                    "prefix": prefix,
                    "created_at": now or utcnow(),
                },
            )
        return key_id

    def find_api_key(self, key_hash: str) -> ApiKeyRecord | None:
        """The key with this hash that is not revoked, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(
                select(api_keys).where(api_keys.c.key_hash == key_hash, api_keys.c.revoked_at.is_(None))
            ).one_or_none()
        return None if row is None else _api_key(row)

    def list_api_keys(self) -> list[ApiKeyRecord]:
        """Every API key (revoked ones too), oldest first; never the key itself."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)).all()
        return [_api_key(row) for row in rows]

    def revoke_api_key(self, key_id: str, *, now: datetime | None = None) -> bool:
        """Revoke a key; ``False`` when there is no such key or it was revoked already."""
        with self.begin() as conn:
            changed = conn.execute(
                update(api_keys)
                .where(api_keys.c.id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=now or utcnow())
            ).rowcount
        return bool(changed)


def _api_key(row: Any) -> ApiKeyRecord:
    return ApiKeyRecord(
        id=row.id,
        name=row.name,
        key_hash=row.key_hash,
        prefix=row.prefix,
        created_at=aware(row.created_at),
        revoked_at=aware(row.revoked_at),
    )
