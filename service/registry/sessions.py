"""Studio's sign-in sessions, kept server side in the registry database.

Owns: creating a session when an API key signs in (a random 256-bit session id for the
browser's cookie, and a random CSRF token bound to the session), finding the live session
behind a cookie, ending it at sign-out, and dropping expired ones. The table holds the
sha256 of the session id, never the id itself, and the API key's id, never the key: a copy
of the database signs nobody in, and no page or cookie ever carries the key. Every replica
sees the same sessions. Timestamps default to the database's clock. Must never store, log or
return an API key.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, select

from service.registry.db import Database
from service.registry.models import StudioSessionRow

SESSION_TTL = timedelta(hours=8)  # absolute: a working day, then sign in again
ID_BYTES = 32


def _digest(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class StudioSession:
    key_id: str
    csrf_token: str
    expires_at: datetime


class SessionStore:
    def __init__(self, db: Database | Engine, ttl: timedelta = SESSION_TTL):
        self.db = Database.of(db)
        self.ttl = ttl

    def create(self, key_id: str, *, now: datetime | None = None) -> tuple[str, StudioSession]:
        """A new session for `key_id`: (the id for the cookie, the session)."""
        now = now or self.db.now()
        session_id = secrets.token_urlsafe(ID_BYTES)
        row = StudioSessionRow(id_sha256=_digest(session_id), key_id=key_id, csrf_token=secrets.token_urlsafe(32),
                               created_at=now, expires_at=now + self.ttl)
        with self.db.session() as s, s.begin():
            s.execute(delete(StudioSessionRow).where(StudioSessionRow.expires_at < now))
            s.add(row)
        return session_id, StudioSession(key_id, row.csrf_token, row.expires_at)

    def get(self, session_id: str | None, *, now: datetime | None = None) -> StudioSession | None:
        if not session_id or len(session_id) > 128:
            return None
        now = now or self.db.now()
        with self.db.session() as s:
            row = s.scalars(select(StudioSessionRow).where(StudioSessionRow.id_sha256 == _digest(session_id))).first()
            if row is None or row.expires_at <= now:
                return None
            return StudioSession(row.key_id, row.csrf_token, row.expires_at)

    def end(self, session_id: str | None) -> bool:
        if not session_id:
            return False
        with self.db.session() as s, s.begin():
            return s.execute(delete(StudioSessionRow).where(StudioSessionRow.id_sha256 == _digest(session_id))).rowcount == 1
