"""Switching twins is part of every backend: `Backend.use_adapter` puts a twin in the PyTorch
adapter slot, unless the backend switches twins itself (TensorRT's refit), and the engine asks
the backend, never probes it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from service.engine.backends import Backend
from service.engine.backends.compile import CompileBackend
from service.engine.backends.eager import EagerBackend
from service.engine.backends.tensorrt import TensorRTBackend


@pytest.fixture(scope="module")
def slot(demo_home):
    """The adapter slot on the demo UNet, as the renderer builds it."""
    from diffusers import UNet2DConditionModel

    from builds.demo import LORA_TARGETS
    from service.twins.slot import AdapterSlot

    unet = UNet2DConditionModel.from_pretrained(demo_home / "demo" / "pipeline", subfolder="unet")
    return AdapterSlot(unet, 4, LORA_TARGETS)


def twin(slot, sha256: str, seed: int):
    """A prepared adapter touching the slot's first layer (rank 4, random weights)."""
    from service.twins.slot import PreparedAdapter

    name, (slot_a, slot_b) = next(iter(slot.layers.items()))
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(slot_a.weight.shape, generator=gen), torch.randn(slot_b.weight.shape, generator=gen)
    return PreparedAdapter(sha256, 4, {name: (a, b)}, a.nbytes + b.nbytes)


def first_b(slot) -> torch.Tensor:
    return next(iter(slot.layers.values()))[1].weight


class Refitting(EagerBackend):
    """A backend that switches twins itself, as TensorRT does once its engines are active."""

    name = "refitting"
    handles_adapters = True

    def __init__(self):
        super().__init__()
        self.owner: str | None = None
        self.switches: list[str | None] = []

    @property
    def adapter_owner(self) -> str | None:
        return self.owner

    def switch_adapter(self, adapter) -> None:
        self.owner = adapter.sha256 if adapter is not None else None
        self.switches.append(self.owner)


def backends(tmp_path: Path) -> list[Backend]:
    return [EagerBackend(), CompileBackend(), TensorRTBackend(tmp_path / "engines", tmp_path / "pipeline", fallback="eager")]


def test_every_backend_is_a_backend_and_says_who_switches_its_twins(tmp_path):
    for backend in backends(tmp_path):
        assert isinstance(backend, Backend), backend.name
        # Until TensorRT's engines are active (here: never prepared), twins go through the slot.
        assert backend.handles_adapters is False and backend.adapter_owner is None, backend.name
    with pytest.raises(TypeError):  # the interface is declared: a backend that leaves out a part is refused
        type("Partial", (Backend,), {"name": "partial", "prepare": lambda self, pipe: None})()


@pytest.mark.parametrize("make", [EagerBackend, CompileBackend], ids=["eager", "compile"])
def test_slot_backends_switch_twins_in_the_slot_and_only_when_the_twin_changes(make, slot):
    backend = make()
    ava, ben = twin(slot, "a" * 64, 1), twin(slot, "b" * 64, 2)
    backend.use_adapter(slot, ava)
    assert backend.adapter_in_use(slot) == ava.sha256 and torch.equal(first_b(slot), next(iter(ava.layers.values()))[1])
    with torch.no_grad():
        first_b(slot).add_(1.0)  # marked: a second copy of the same twin would overwrite the mark
    backend.use_adapter(slot, ava)
    assert torch.equal(first_b(slot), next(iter(ava.layers.values()))[1] + 1.0)
    backend.use_adapter(slot, ben)
    assert backend.adapter_in_use(slot) == ben.sha256 and torch.equal(first_b(slot), next(iter(ben.layers.values()))[1])
    backend.use_adapter(slot, None)
    assert backend.adapter_in_use(slot) is None and not first_b(slot).any()
    with pytest.raises(NotImplementedError, match="adapter slot"):
        backend.switch_adapter(ava)


def test_a_backend_that_switches_twins_itself_leaves_the_slot_alone(slot):
    backend = Refitting()
    slot.clear()
    ava = twin(slot, "a" * 64, 1)
    backend.use_adapter(slot, ava)
    assert backend.adapter_in_use(slot) == ava.sha256
    assert slot.owner is None and not first_b(slot).any()  # the slot adds nothing: the backend renders the twin
    backend.use_adapter(slot, None)
    assert backend.switches == [ava.sha256, None] and backend.adapter_in_use(slot) is None
