"""A simulation of catalogue drops on Atelier's gateway and renderer, with the manifests' numbers.

Models Atelier as implemented (service/jobs/dispatcher.py, service/gateway/render_client.py,
service/renderer/service.py), on the settings read from infra/bentocloud/deployment.yaml and
infra/k8s/ (so this page and the manifests cannot drift apart):

- Catalogue items wait in the registry's durable queue. The gateway's dispatcher leases them
  one group at a time (up to `--batch` items of one twin and shape per render call) and keeps
  at most `window` calls in flight (ATELIER_DISPATCH_WINDOW, by default max replicas x workers x
  concurrency, computed by service.config from the manifests' envs). When a call returns, that
  dispatcher slot spends `--call-overhead-s` delivering and recording before it leases again.
- Interactive generations (the trickle) are synchronous render calls outside the window.
- Calls wait in the platform's queue (BentoCloud's external queue, Knative's activator) for a
  ready renderer replica with a free slot (workers x max_concurrency calls per replica).
- The platform scales renderer replicas on calls in flight per replica (target = traffic.
  concurrency): BentoCloud as the Kubernetes HPA it is built on (15 s sync, scale-up and
  scale-down stabilization windows), Knative as the KPA (2 s tick, 60 s stable and 6 s panic
  windows, scale-down delay, then the last pod's retention period). On both, a call arriving
  while no replica runs starts one at once.
- A replica serves `--cold-start-s` after it is started and is billed (GPU-seconds) from start
  to stop. Scale-down removes starting replicas first, then idle ones; a busy one finishes its
  call first. The gateway (min 1 CPU replica) is not billed here.

The workload (seeded): a quiet trickle of interactive images (one every ~2 minutes) and, over
6 hours, three catalogue drops of 1,500, 3,000 and 800 images submitted within 5, 10 and 2
minutes, the pattern of brands publishing a collection. Reports, per platform: queue wait per
image (submission to render start) p50/p95/max, the time each drop took to finish (first
submission to last image delivered), peak replicas, GPU-seconds per 1,000 images. Prints one
JSON line and a table; docs/SCALING.md quotes them.

    python bench/scaling.py [--seconds-per-image 1.5] [--cold-start-s 30] [--batch 1] [--max-replicas N]
"""

from __future__ import annotations

import argparse
import heapq
import itertools
import json
import math
import random
import re
import sys
from collections import deque
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from service.config import Settings  # noqa: E402  (pure: no torch, no bentoml)

BENTOCLOUD = ROOT / "infra" / "bentocloud" / "deployment.yaml"
K8S = ROOT / "infra" / "k8s"
GATEWAY, RENDERER = "atelier-gateway", "atelier-renderer"
DROPS = ((1800, 1500, 300), (9000, 3000, 600), (16200, 800, 120))  # (start s, images, spread s)


# -- the settings, from the manifests -------------------------------------------------------------


@dataclass(frozen=True)
class Platform:
    name: str
    autoscaler: str  # "hpa" (BentoCloud) or "kpa" (Knative)
    min_replicas: int
    max_replicas: int
    target: float  # calls in flight per replica the autoscaler aims at
    slots: int  # calls one replica takes at once (workers x max_concurrency)
    window: int  # the gateway's dispatch window
    dispatch_batch: int  # ATELIER_DISPATCH_BATCH (the most items per call)
    scale_up_window_s: float = 0.0  # hpa
    scale_down_window_s: float = 0.0  # hpa: stabilization; kpa: scale-down-delay
    retention_s: float = 0.0  # kpa: the last pod's retention after the decision to go to zero
    sync_s: float = 15.0  # how often the autoscaler decides
    stable_window_s: float = 60.0  # kpa
    panic_window_s: float = 6.0  # kpa
    panic_threshold: float = 2.0  # kpa: 200 %
    source: str = ""


def duration_s(value: str) -> float:
    match = re.fullmatch(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+)s)?", str(value))
    if not match or not value:
        raise ValueError(f"not a duration: {value!r}")
    h, m, s = (int(x or 0) for x in match.groups())
    return float(3600 * h + 60 * m + s)


def _renderer_slots(env: dict[str, str]) -> tuple[int, int]:
    """(target, slots per replica) as the renderer's decorator computes them from its env."""
    settings = Settings.from_env(env)
    return settings.renderer_concurrency, settings.renderer_workers * settings.renderer_concurrency


def bentocloud() -> Platform:
    doc = yaml.safe_load(BENTOCLOUD.read_text())
    shared = {e["name"]: str(e["value"]) for e in doc.get("envs") or []}
    envs = {name: {**shared, **{e["name"]: str(e["value"]) for e in svc.get("envs") or []}}
            for name, svc in doc["services"].items()}
    scaling = doc["services"][RENDERER]["scaling"]
    policy = scaling.get("policy") or {}
    target, slots = _renderer_slots(envs[RENDERER])
    gateway = Settings.from_env(envs[GATEWAY])
    return Platform(
        name="BentoCloud", autoscaler="hpa", min_replicas=scaling["min_replicas"], max_replicas=scaling["max_replicas"],
        target=float(target), slots=slots, window=gateway.window, dispatch_batch=gateway.dispatch_batch,
        scale_up_window_s=float(policy.get("scale_up_stabilization_window", 0)),
        scale_down_window_s=float(policy.get("scale_down_stabilization_window", 300)), sync_s=15.0,
        source=str(BENTOCLOUD.relative_to(ROOT)))


def _k8s_docs() -> list[dict]:
    docs = []
    for path in sorted(K8S.glob("*.yaml")):
        if path.name not in ("kustomization.yaml", "secret.example.yaml"):
            docs += [d for d in yaml.safe_load_all(path.read_text()) if d]
    return docs


def _container_env(docs: list[dict], ksvc: dict) -> dict[str, str]:
    maps = {d["metadata"]["name"]: d.get("data") or {} for d in docs if d["kind"] == "ConfigMap"}
    [container] = ksvc["spec"]["template"]["spec"]["containers"]
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        env.update({k: str(v) for k, v in maps[source["configMapRef"]["name"]].items()})
    for entry in container.get("env", []):  # $(NAME) expands as the kubelet does; a pod's name is unknown here
        if "value" in entry:
            env[entry["name"]] = re.sub(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)", lambda m: env.get(m.group(1), m.group(0)),
                                        str(entry["value"]))
        elif "fieldRef" in entry.get("valueFrom", {}):
            env[entry["name"]] = "pod"
    return env


def knative() -> Platform:
    docs = _k8s_docs()
    services = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Service"}
    renderer, gateway = services[RENDERER], services[GATEWAY]
    notes = renderer["spec"]["template"]["metadata"]["annotations"]
    utilization = float(notes.get("autoscaling.knative.dev/target-utilization-percentage", "70")) / 100
    _, slots = _renderer_slots(_container_env(docs, renderer))
    slots = min(slots, renderer["spec"]["template"]["spec"].get("containerConcurrency") or slots)
    settings = Settings.from_env(_container_env(docs, gateway))
    return Platform(
        name="Knative", autoscaler="kpa", min_replicas=int(notes["autoscaling.knative.dev/min-scale"]),
        max_replicas=int(notes["autoscaling.knative.dev/max-scale"]),
        target=float(notes["autoscaling.knative.dev/target"]) * utilization, slots=slots,
        window=settings.window, dispatch_batch=settings.dispatch_batch,
        scale_down_window_s=duration_s(notes.get("autoscaling.knative.dev/scale-down-delay", "0s")),
        retention_s=duration_s(notes.get("autoscaling.knative.dev/scale-to-zero-pod-retention-period", "0s")),
        sync_s=2.0, source=f"{K8S.relative_to(ROOT)}/renderer-service.yaml, gateway-service.yaml, configmap.yaml")


def platforms() -> list[Platform]:
    return [bentocloud(), knative()]


# -- the workload ---------------------------------------------------------------------------------


@dataclass
class Item:
    arrived: float
    drop: int | None  # None: an interactive (synchronous) generation
    started: float = -1.0
    done: float = -1.0


def workload(seed: int, hours: float = 6.0) -> list[Item]:
    rng = random.Random(seed)
    horizon = hours * 3600
    items = []
    t = 0.0
    while t < horizon:  # the trickle: one image every ~120 s
        t += rng.expovariate(1 / 120)
        items.append(Item(t, None))
    for n, (start, images, spread_s) in enumerate(DROPS):
        items += [Item(start + rng.uniform(0, spread_s), n) for _ in range(images)]
    return sorted((i for i in items if i.arrived < horizon), key=lambda i: i.arrived)


# -- the simulation -------------------------------------------------------------------------------


@dataclass
class Replica:
    started: float
    ready_at: float
    busy: int = 0
    draining: bool = False
    stopped: float = -1.0

    def ready(self, t: float) -> bool:
        return self.ready_at <= t and not self.draining


@dataclass
class Call:
    items: list[Item]
    catalogue: bool
    replica: Replica | None = None


@dataclass
class Sim:
    platform: Platform
    service_s: float
    cold_start_s: float
    batch: int
    overhead_s: float
    now: float = 0.0
    events: list = field(default_factory=list)
    seq: itertools.count = field(default_factory=itertools.count)
    durable: deque = field(default_factory=deque)  # catalogue items not leased yet
    platform_queue: deque = field(default_factory=deque)  # calls waiting for a replica slot
    replicas: list = field(default_factory=list)  # counted by the autoscaler (not draining)
    gone: list = field(default_factory=list)  # stopped or draining, for the bill
    free_slots: int = 0  # dispatcher slots
    in_service: int = 0
    samples: deque = field(default_factory=deque)  # kpa: (t, calls in flight)
    decisions: deque = field(default_factory=deque)  # (t, desired) for stabilization / delay
    zero_since: float | None = None
    pending: int = 0  # items not arrived yet
    load_area: float = 0.0  # calls in flight x seconds since the last tick
    load_since: float = 0.0
    last_tick: float = 0.0
    panic_until: float = -1.0
    peak: int = 0
    cold_starts: int = 0
    busy_s: float = 0.0

    def at(self, t: float, fn, *args) -> None:
        heapq.heappush(self.events, (t, next(self.seq), fn, args))

    # the gateway --------------------------------------------------------------------------------

    def arrive(self, item: Item) -> None:
        if item.drop is None:
            self.send(Call([item], catalogue=False))
        else:
            self.durable.append(item)
            self.dispatch()

    def dispatch(self) -> None:
        """Lease groups while the window has room (items of one drop share twin and shape)."""
        while self.free_slots > 0 and self.durable:
            group = [self.durable.popleft()]
            while len(group) < self.batch and self.durable and self.durable[0].drop == group[0].drop:
                group.append(self.durable.popleft())
            self.free_slots -= 1
            self.send(Call(group, catalogue=True))

    def send(self, call: Call) -> None:
        self.account()
        self.platform_queue.append(call)
        if not self.replicas:  # the activator / external queue starts a replica at once
            self.scale_to(max(1, min(self.platform.max_replicas, math.ceil(self.in_flight() / self.platform.target))))
        self.route()

    def returned(self, call: Call) -> None:
        self.account()
        self.busy_s += self.now - call.items[0].started
        replica = call.replica
        replica.busy -= 1
        self.in_service -= 1
        if replica.draining and replica.busy == 0:
            replica.stopped = self.now
        if call.catalogue:
            self.at(self.now + self.overhead_s, self.delivered, call)
        else:
            for item in call.items:
                item.done = self.now
        self.route()

    def delivered(self, call: Call) -> None:
        for item in call.items:
            item.done = self.now
        self.free_slots += 1
        self.dispatch()

    # the platform -------------------------------------------------------------------------------

    def in_flight(self) -> int:
        return len(self.platform_queue) + self.in_service

    def account(self) -> None:
        """Integrate the calls in flight over time: the autoscalers see averages, not instants."""
        self.load_area += (self.now - self.load_since) * self.in_flight()
        self.load_since = self.now

    def average_load(self) -> float:
        """Calls in flight on average since the last tick (what the queue-proxies / metrics report)."""
        self.account()
        span = self.now - self.last_tick
        load = self.load_area / span if span > 0 else float(self.in_flight())
        self.load_area, self.last_tick = 0.0, self.now
        return load

    def route(self) -> None:
        for replica in self.replicas:
            while self.platform_queue and replica.ready(self.now) and replica.busy < self.platform.slots:
                call = self.platform_queue.popleft()
                call.replica = replica
                replica.busy += 1
                self.in_service += 1
                for item in call.items:
                    item.started = self.now
                self.at(self.now + self.service_s * len(call.items), self.returned, call)

    def replica_ready(self, replica: Replica) -> None:
        self.route()

    def scale_to(self, wanted: int) -> None:
        while len(self.replicas) < wanted:
            replica = Replica(self.now, self.now + self.cold_start_s)
            self.replicas.append(replica)
            self.cold_starts += 1
            self.at(replica.ready_at, self.replica_ready, replica)
        if len(self.replicas) > wanted:
            # Kubernetes removes pods that are not ready first, then the others; idle before busy.
            order = sorted(self.replicas, key=lambda r: (r.ready(self.now), r.busy > 0, -r.started))
            for replica in order[: len(self.replicas) - wanted]:
                self.replicas.remove(replica)
                self.gone.append(replica)
                if replica.busy:
                    replica.draining = True
                else:
                    replica.stopped = self.now
        self.peak = max(self.peak, len(self.replicas))

    def tick(self) -> None:
        p = self.platform
        load = self.average_load()
        if p.autoscaler == "hpa":
            desired = min(p.max_replicas, max(p.min_replicas, math.ceil(load / p.target)))
            self.decisions.append((self.now, desired))
            horizon = max(p.scale_up_window_s, p.scale_down_window_s)
            while self.decisions and self.decisions[0][0] < self.now - horizon:
                self.decisions.popleft()
            current = len(self.replicas)
            if desired > current:  # the lowest recommendation within the scale-up window
                wanted = min(d for t, d in self.decisions if t >= self.now - p.scale_up_window_s)
            else:  # the highest recommendation within the scale-down window
                wanted = max(d for t, d in self.decisions if t >= self.now - p.scale_down_window_s)
            if wanted != current:
                self.scale_to(wanted)
        else:
            self.samples.append((self.now, load))
            while self.samples and self.samples[0][0] <= self.now - p.stable_window_s:
                self.samples.popleft()
            stable = sum(n for _, n in self.samples) / len(self.samples)
            recent = [n for t, n in self.samples if t > self.now - p.panic_window_s]
            panic = sum(recent) / len(recent)
            ready = max(1, sum(1 for r in self.replicas if r.ready(self.now)))
            want_stable, want_panic = math.ceil(stable / p.target), math.ceil(panic / p.target)
            if want_panic / ready >= p.panic_threshold:
                self.panic_until = self.now + p.stable_window_s
            desired = max(want_stable, want_panic, len(self.replicas)) if self.now < self.panic_until else want_stable
            desired = min(p.max_replicas, max(p.min_replicas, desired))
            self.decisions.append((self.now, desired))
            while self.decisions and self.decisions[0][0] < self.now - p.scale_down_window_s:
                self.decisions.popleft()
            wanted = desired if desired >= len(self.replicas) else max(d for _, d in self.decisions)
            if wanted == 0 and self.replicas:  # the last pod stays for the retention period
                self.zero_since = self.now if self.zero_since is None else self.zero_since
                wanted = 0 if self.now - self.zero_since >= p.retention_s else 1
            else:
                self.zero_since = None
            if wanted != len(self.replicas):
                self.scale_to(wanted)
        self.route()
        if not self.done():
            self.at(self.now + p.sync_s, self.tick)

    def done(self) -> bool:
        return (self.pending == 0 and not self.platform_queue and self.in_service == 0
                and len(self.replicas) <= self.platform.min_replicas and not any(r.stopped < 0 for r in self.gone))

    def run(self, items: list[Item]) -> None:
        self.free_slots = self.platform.window
        self.pending = len(items)
        for item in items:
            self.at(item.arrived, self._arrive, item)
        self.at(0.0, self.tick)
        while self.events:
            self.now, _, fn, args = heapq.heappop(self.events)
            fn(*args)
        for replica in self.replicas:
            replica.stopped = self.now

    def _arrive(self, item: Item) -> None:
        self.pending -= 1
        self.arrive(item)


def percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def simulate(platform: Platform, seed: int, service_s: float, cold_start_s: float, batch: int, overhead_s: float) -> dict:
    items = workload(seed)
    sim = Sim(platform, service_s, cold_start_s, batch, overhead_s)
    sim.run(items)
    assert all(i.done >= 0 for i in items), "an item was never rendered"
    waits = [i.started - i.arrived for i in items]
    interactive = [i.started - i.arrived for i in items if i.drop is None]
    billed = sum(r.stopped - r.started for r in sim.replicas + sim.gone)
    drops = []
    for n, (start, images, _) in enumerate(DROPS):
        mine = [i for i in items if i.drop == n]
        drops.append({"images": len(mine), "finished_after_s": round(max(i.done for i in mine) - min(i.arrived for i in mine), 0),
                      "wait_max_s": round(max(i.started - i.arrived for i in mine), 1)})
    return {
        "platform": platform.name,
        "images": len(items),
        "queue_wait_p50_s": round(percentile(waits, 0.50), 1),
        "queue_wait_p95_s": round(percentile(waits, 0.95), 1),
        "queue_wait_max_s": round(max(waits), 1),
        "interactive_wait_p95_s": round(percentile(interactive, 0.95), 1),
        "interactive_wait_max_s": round(max(interactive), 1),
        "drops": drops,
        "peak_replicas": sim.peak,
        "cold_starts": sim.cold_starts,
        "gpu_seconds_per_1000_images": round(billed / len(items) * 1000, 0),
        "busy_share": round(sim.busy_s / billed, 3),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds-per-image", type=float, default=1.5, help="GPU time per image (SDXL 1024, 30 steps)")
    parser.add_argument("--cold-start-s", type=float, default=30.0, help="scale-from-zero until a replica serves")
    parser.add_argument("--batch", type=int, default=1,
                        help="items per render call (at most the manifests' ATELIER_DISPATCH_BATCH); a call of n images "
                             "takes n x seconds-per-image")
    parser.add_argument("--call-overhead-s", type=float, default=0.25,
                        help="gateway time per call between the renderer's answer and the next lease (delivery to S3, "
                             "recording, audit)")
    parser.add_argument("--max-replicas", type=int, default=None,
                        help="what if: the renderer's max replicas (and ATELIER_RENDERER_MAX_REPLICAS, hence the window) "
                             "were N on both platforms, instead of the manifests' value")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    settings = platforms()
    if args.max_replicas is not None:
        settings = [replace(p, max_replicas=args.max_replicas, window=args.max_replicas * p.slots,
                            source=f"{p.source}, max replicas {args.max_replicas} (what if)") for p in settings]
    for platform in settings:
        if args.batch > platform.dispatch_batch:
            parser.error(f"--batch {args.batch} exceeds {platform.name}'s ATELIER_DISPATCH_BATCH ({platform.dispatch_batch})")
    results = [simulate(p, args.seed, args.seconds_per_image, args.cold_start_s, args.batch, args.call_overhead_s)
               for p in settings]
    report = {"bench": "scaling", "seconds_per_image": args.seconds_per_image, "cold_start_s": args.cold_start_s,
              "batch": args.batch, "call_overhead_s": args.call_overhead_s, "seed": args.seed,
              "platforms": [asdict(p) for p in settings], "results": results}
    print(json.dumps(report))
    print(f"{'platform':<12}{'replicas':>9}{'window':>7}{'down s':>8}{'p50 wait s':>11}{'p95 wait s':>11}"
          f"{'max wait s':>11}{'drops finished after s':>24}{'peak':>6}{'GPU-s/1k img':>14}{'busy':>6}")
    for p, r in zip(settings, results):
        down = p.scale_down_window_s + p.retention_s
        drops = " / ".join(f"{d['finished_after_s']:.0f}" for d in r["drops"])
        print(f"{p.name:<12}{f'{p.min_replicas}-{p.max_replicas}':>9}{p.window:>7}{down:>8.0f}{r['queue_wait_p50_s']:>11.1f}"
              f"{r['queue_wait_p95_s']:>11.1f}{r['queue_wait_max_s']:>11.1f}{drops:>24}{r['peak_replicas']:>6}"
              f"{r['gpu_seconds_per_1000_images']:>14.0f}{r['busy_share']:>6.2f}")
    return report


if __name__ == "__main__":
    main()
