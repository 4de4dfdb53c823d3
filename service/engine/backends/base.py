"""The backend interface: prepare a loaded pipeline once, say what to warm up, vet requests, report.

Owns: the `Backend` base every backend derives from (preparing, warm-up, vetting, status, and
how the pipeline switches twins: through the PyTorch adapter slot unless the backend switches
them itself, as TensorRT's refit does), the warm-up shape type, parsing
`ATELIER_WARMUP_SIZES`, and the one place a backend reports that it serves on a slower path
than configured (`report_fallback`: a log line and the `atelier_backend_fallbacks_total`
Prometheus counter). Must never import bentoml.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING

from service.config import ConfigError

if TYPE_CHECKING:
    from service.twins.slot import AdapterSlot, PreparedAdapter

log = logging.getLogger("atelier.engine")

MIN_SIDE, MAX_SIDE, SIDE_MULTIPLE = 256, 2048, 8  # what GenerateRequest accepts (service.schemas)


@dataclass(frozen=True)
class WarmupShape:
    """One warm-up generation: its size in pixels, images, and whether CFG doubles the UNet batch."""

    width: int
    height: int
    images: int = 1
    cfg: bool = True

    def __str__(self) -> str:
        return f"{self.width}x{self.height}" + (f"x{self.images}" if self.images != 1 else "") + ("" if self.cfg else " (no cfg)")


class Backend(ABC):
    """How the loaded pipeline's modules run (eager, compile, tensorrt): one per renderer worker."""

    name: str
    # True when the backend switches twins itself (`switch_adapter`: TensorRT fuses a twin into its
    # engine by refit); False when twins go through the PyTorch adapter slot (eager, compile).
    handles_adapters: bool = False

    @abstractmethod
    def prepare(self, pipe) -> None:
        """Make `pipe` ready to run on this backend (compile, load engines, ...). Called once."""

    def prepare_unet(self, unet) -> None:
        """Prepare another UNet that serves beside the pipeline's (eager, compile; tensorrt leaves it as loaded)."""

    @abstractmethod
    def warmup_shapes(self) -> tuple[WarmupShape, ...]:
        """The generations `Engine.warm_up` runs, in order, before the service says ready."""

    @abstractmethod
    def check_request(self, request) -> None:
        """Raise a 422 (`InvalidRequest`) for a request this backend cannot serve, before any GPU work."""

    @abstractmethod
    def check_shape(self, width: int, height: int, images: int, guidance_scale: float) -> None:
        """`check_request` for one pipeline batch of `images` rows sharing a size and guidance."""

    @abstractmethod
    def max_images(self, width: int, height: int, guidance_scale: float) -> int | None:
        """The most images one pipeline batch of this shape may hold (None: no limit of the backend's)."""

    @abstractmethod
    def status(self) -> dict:
        """What the `ready` log line and /readyz report: the backend serving, any fallback, its range."""

    # -- twins: the adapter the pipeline renders with -------------------------------------------

    @property
    def adapter_owner(self) -> str | None:
        """The sha256 of the adapter the backend itself renders with (only while `handles_adapters`)."""
        return None

    def switch_adapter(self, adapter: PreparedAdapter | None) -> None:
        """Render `adapter` from now on (None: the base model), where `handles_adapters`. Callers
        hold the pipeline lock."""
        raise NotImplementedError(f"the {self.name} backend switches twins in the adapter slot")

    def use_adapter(self, slot: AdapterSlot, adapter: PreparedAdapter | None) -> None:
        """Make the pipeline render `adapter` (None: the base model): in the backend where it
        `handles_adapters`, else in `slot` (an in-place copy; nothing when it is there already).
        Callers hold the pipeline lock."""
        if self.handles_adapters:
            self.switch_adapter(adapter)
        elif adapter is None:
            if slot.owner is not None:
                slot.clear()
            else:  # after a mixed batch the rows may still read twins' lanes: point them at none
                slot.route_base()
        elif slot.owner != adapter.sha256:
            slot.load(adapter)

    def use_adapters(self, slot: AdapterSlot, adapters: list[PreparedAdapter | None], cfg: bool) -> list[int]:
        """Make the pipeline render `adapters[i]` on image row i (a mixed-twin batch): each
        distinct twin in a lane of `slot`, each UNet row reading its lane (`AdapterSlot.route`;
        `cfg`: the UNet batch is the rows twice). A backend that `handles_adapters` renders one
        twin per batch (a TensorRT refit is per engine): more than one is refused (ValueError).
        Callers hold the pipeline lock. Returns each image row's lane."""
        if self.handles_adapters:
            if len({a.sha256 if a is not None else None for a in adapters}) > 1:
                raise ValueError(f"the {self.name} backend renders one twin per batch: group items by twin")
            self.switch_adapter(adapters[0] if adapters else None)
            return [0] * len(adapters)
        return slot.route(adapters, cfg)

    def adapter_in_use(self, slot: AdapterSlot) -> str | None:
        """The sha256 of the adapter the pipeline renders with now (the backend's or the slot's)."""
        return self.adapter_owner if self.handles_adapters else slot.owner


def parse_warmup_sizes(items: tuple[str, ...] | list[str]) -> tuple[tuple[int, int], ...]:
    """("1024x1024", "896x1152") -> ((1024, 1024), (896, 1152)): WIDTHxHEIGHT in pixels, each a
    size the API accepts (256..2048, multiples of 8). Raises ConfigError."""
    sizes = []
    for item in items:
        try:
            width, height = (int(p) for p in item.strip().lower().split("x"))
        except ValueError:
            raise ConfigError(f"ATELIER_WARMUP_SIZES items are WIDTHxHEIGHT in pixels, got {item!r}") from None
        for side in (width, height):
            if not MIN_SIDE <= side <= MAX_SIDE or side % SIDE_MULTIPLE:
                raise ConfigError(f"ATELIER_WARMUP_SIZES: {item!r} is not a size the API accepts "
                                  f"({MIN_SIDE}..{MAX_SIDE} px, multiples of {SIDE_MULTIPLE})")
        if (width, height) not in sizes:
            sizes.append((width, height))
    if not sizes:
        raise ConfigError("ATELIER_WARMUP_SIZES lists no size")
    return tuple(sizes)


@cache
def _fallback_counter():
    from prometheus_client import Counter

    return Counter("atelier_backend_fallbacks", "Times a backend served on a slower path than configured "
                   "(compile -> eager for one UNet call, or tensorrt -> eager/compile at start-up)",
                   ["backend", "to", "reason"])


def report_fallback(backend: str, to: str, reason: str, detail: str, log_line: bool = True, **fields) -> None:
    """One fallback: `atelier_backend_fallbacks_total{backend,to,reason}` + 1 and (unless `log_line`
    is False: a repeat the caller has logged already) a WARNING log line."""
    if log_line:
        log.warning(f"{backend} backend fell back to {to}", extra={"fields": {
            "backend": backend, "to": to, "reason": reason, "detail": detail[:500], **fields}})
    _fallback_counter().labels(backend=backend, to=to, reason=reason).inc()
