"""The backend interface: prepare a loaded pipeline once, before warm-up and serving."""

from __future__ import annotations

from typing import Protocol


class Backend(Protocol):
    name: str

    def prepare(self, pipe) -> None:
        """Make `pipe` ready to run on this backend (compile, load engines, ...). Called once."""
