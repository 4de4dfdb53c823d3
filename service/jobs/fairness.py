"""Fair shares of the render window across tenants: deficit round robin.

Owns: choosing which tenant's work is leased next (`DeficitRoundRobin.pick`) and charging a
tenant for what it was given (`charge`). Tenants take turns in a fixed ring; on its turn a
tenant is granted a quantum (default: one item) and is picked while its deficit is positive.
A group leased at once can overdraw it; the tenant then sits out turns until the quantum
has paid the overdraft back, so over time each busy tenant gets the same number of items,
however much it queued. Priority orders only the jobs within one tenant (the store's
`lease_items`); it never buys a tenant a bigger share here. Must never touch the database,
the clock or randomness: the same calls give the same picks (pure Python, deterministic).

Use: `tenant = drr.pick(store.runnable_tenants())`, lease that tenant's items, then
`drr.charge(tenant, len(leases))`. A pick that leased nothing should be followed by a fresh
`runnable_tenants()` (the tenant ran dry), or `charge(tenant, quantum)` to pass its turn.
"""

from __future__ import annotations

from collections.abc import Iterable


class DeficitRoundRobin:
    def __init__(self, quantum: float = 1.0):
        if quantum <= 0:
            raise ValueError("quantum must be positive")
        self.quantum = quantum
        self._ring: list[str] = []  # tenants in turn order: the order they became runnable (ties sorted)
        self._deficit: dict[str, float] = {}
        self._turn = 0  # index in _ring of the tenant whose turn it is
        self._granted = False  # whether that tenant has had its quantum for this turn

    def pick(self, runnable: Iterable[str]) -> str | None:
        """The tenant to serve next, among `runnable`; None when there is none. Tenants not in
        `runnable` leave the ring and lose their deficit; new ones join at the end."""
        self._sync(set(runnable))
        if not self._ring:
            return None
        # Each step grants one tenant a positive quantum, so a deficit turns positive in finitely many steps.
        while True:
            tenant = self._ring[self._turn]
            if not self._granted:
                self._deficit[tenant] += self.quantum
                self._granted = True
            if self._deficit[tenant] > 0:
                return tenant
            self._advance()

    def charge(self, tenant: str, cost: float = 1) -> None:
        """Take `cost` (items leased) off the tenant's deficit; its turn ends when it is spent."""
        if tenant not in self._deficit:
            return
        self._deficit[tenant] -= cost
        if self._ring[self._turn] == tenant and self._deficit[tenant] <= 0:
            self._advance()

    def deficits(self) -> dict[str, float]:
        """Each tenant in the ring and its deficit, in turn order (for metrics and tests)."""
        return {tenant: self._deficit[tenant] for tenant in self._ring}

    def _advance(self) -> None:
        self._turn = (self._turn + 1) % len(self._ring)
        self._granted = False

    def _sync(self, runnable: set[str]) -> None:
        current = self._ring[self._turn] if self._ring else None
        kept = [t for t in self._ring if t in runnable]
        if current is not None and current not in runnable:
            # The tenant whose turn it was left: the turn passes to the next one still here.
            position = self._ring.index(current)
            later = [t for t in self._ring[position + 1:] + self._ring[:position] if t in runnable]
            current, self._granted = (later[0] if later else None), False
        for gone in set(self._ring) - runnable:
            del self._deficit[gone]
        joined = sorted(runnable - set(self._ring))
        for tenant in joined:
            self._deficit[tenant] = 0.0
        self._ring = kept + joined
        self._turn = self._ring.index(current) if current is not None else 0
        if current is None:
            self._granted = False


__all__ = ["DeficitRoundRobin"]
