"""Audit records: canonical JSON, record hashes, and the fields the log assigns.

Owns: the byte form of a record (`canonical_json`: sorted keys, no whitespace, UTF-8 with
`ensure_ascii=False`, NaN/inf refused) and its hash (sha256 hex over the canonical JSON of every
field but `hash`). A record is a dict with `seq` (from 1), `event_id` (uuid4 hex), `ts` (UTC ISO
8601 with microseconds and 'Z'), `prev_hash` (64 zeros for seq 1), `hash`, and the caller's
event fields. Must never do I/O, and never accept an event that sets one of the log's own fields.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

from service.errors import AtelierError

GENESIS_HASH = "0" * 64
RESERVED_FIELDS = frozenset({"seq", "event_id", "ts", "prev_hash", "hash"})


class AuditError(AtelierError):
    """The audit log cannot record an event: the request must not go ahead unaudited."""

    status = 503
    code = "audit_unavailable"


class InvalidEvent(AuditError):
    """The event is not a JSON object of finite values, or sets a field the log assigns."""

    status = 500
    code = "invalid_audit_event"


def canonical_json(obj: Any) -> bytes:
    """The one byte form of `obj` that is hashed and signed."""
    try:
        text = json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidEvent(f"not canonical JSON: {exc}") from None
    return text.encode("utf-8")


def record_hash(record: Mapping[str, Any]) -> str:
    """sha256 hex over the canonical JSON of every field except `hash`."""
    body = {key: value for key, value in record.items() if key != "hash"}
    return hashlib.sha256(canonical_json(body)).hexdigest()


def utc_timestamp(now: dt.datetime | None = None) -> str:
    """`2025-01-31T12:34:56.789012Z`."""
    moment = now or dt.datetime.now(dt.timezone.utc)
    return moment.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def check_event(event: Mapping[str, Any]) -> dict[str, Any]:
    """A plain-dict copy of `event`, refused if it is not an object or sets a reserved field."""
    if not isinstance(event, Mapping):
        raise InvalidEvent(f"an audit event is a JSON object, got {type(event).__name__}")
    clash = RESERVED_FIELDS.intersection(event)
    if clash:
        raise InvalidEvent(f"the log assigns {', '.join(sorted(clash))}; an event must not set them")
    for key in event:
        if not isinstance(key, str):
            raise InvalidEvent(f"event field names are strings, got {key!r}")
    return dict(event)


def build_record(event: Mapping[str, Any], seq: int, prev_hash: str, ts: str | None = None) -> tuple[dict, bytes]:
    """The sealed record for `event` at `seq` and its line on disk (canonical JSON + newline)."""
    record = check_event(event)
    record.update(seq=seq, event_id=uuid.uuid4().hex, ts=ts or utc_timestamp(), prev_hash=prev_hash)
    record["hash"] = record_hash(record)
    return record, canonical_json(record) + b"\n"
