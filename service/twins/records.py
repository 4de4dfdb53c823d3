"""Twin records: which person an id names and which adapter file (with its sha256) is theirs.

Owns: the TwinRecord data type, twin id validation, and the file-backed catalogue under
`$ATELIER_HOME/twins/<id>.json`. Must never load weights or touch the pipeline.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

from service.errors import AdapterUnavailable, InvalidRequest, TwinNotFound

TWIN_ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def check_twin_id(twin_id: str) -> str:
    """Return `twin_id` if it is a valid id; ids never contain dots or slashes."""
    if not isinstance(twin_id, str) or not TWIN_ID_RE.fullmatch(twin_id):
        raise InvalidRequest(
            "twin_id must be 1-64 characters of a-z, 0-9, '-' or '_', starting with a letter or digit",
            field="twin_id",
        )
    return twin_id


@dataclass(frozen=True)
class TwinRecord:
    id: str
    display_name: str
    adapter_path: str  # key of the adapter file, relative to the adapter store's root
    sha256: str
    rank: int | None = None

    @classmethod
    def from_dict(cls, data: dict) -> "TwinRecord":
        return cls(
            id=check_twin_id(data["id"]),
            display_name=str(data.get("display_name") or data["id"]),
            adapter_path=str(data["adapter_path"]),
            sha256=str(data["sha256"]).lower(),
            rank=int(data["rank"]) if data.get("rank") is not None else None,
        )


class TwinCatalog:
    """Twin records stored as one JSON file per twin in a directory."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)

    def get(self, twin_id: str) -> TwinRecord:
        check_twin_id(twin_id)
        path = self.directory / f"{twin_id}.json"
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise TwinNotFound(f"no twin with id {twin_id!r}", field="twin_id") from None
        except (OSError, ValueError) as exc:
            raise AdapterUnavailable(f"the record of twin {twin_id!r} cannot be read: {exc}") from None
        try:
            record = TwinRecord.from_dict(data)
        except (KeyError, TypeError, ValueError, InvalidRequest) as exc:
            raise AdapterUnavailable(f"the record of twin {twin_id!r} is invalid: {exc}") from None
        if record.id != twin_id:
            raise AdapterUnavailable(f"the record file of twin {twin_id!r} names another twin ({record.id!r})")
        return record

    def put(self, record: TwinRecord) -> None:
        """Write a record atomically (temp file + rename): readers see the old or the new one."""
        check_twin_id(record.id)
        self.directory.mkdir(parents=True, exist_ok=True)
        body = json.dumps(
            {"id": record.id, "display_name": record.display_name, "adapter_path": record.adapter_path,
             "sha256": record.sha256, "rank": record.rank},
            indent=2,
        )
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=".record-")
        with os.fdopen(fd, "w") as fh:
            fh.write(body + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.directory / f"{record.id}.json")

    def ids(self) -> list[str]:
        if not self.directory.is_dir():
            return []
        return sorted(p.stem for p in self.directory.glob("*.json") if TWIN_ID_RE.fullmatch(p.stem))
