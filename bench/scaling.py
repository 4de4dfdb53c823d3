"""A queueing simulation of a bursty catalogue workload under two autoscaling settings.

Models what BentoCloud or Knative do with Atelier: requests (one image each) queue outside
the replicas (BentoCloud's external queue, Knative's activator); a replica renders one image
at a time; the autoscaler wants `in flight / replicas <= target` and adds replicas, which
serve only after a cold start; a replica idle for the scale-down window goes away; replicas
are billed (GPU-seconds) from start to stop, cold start included. Reports queue wait
(p50/p95/max), peak replicas and GPU-seconds per 1,000 images for each setting.
Deterministic (seeded). Prints one JSON line and a short table; docs/SCALING.md quotes it.

The workload: a quiet trickle (one image every ~2 minutes) and, over 6 hours, three
catalogue drops from e-commerce platforms (1,500, 3,000 and 800 images submitted within a
few minutes each), the pattern of brands publishing a collection.

    python bench/scaling.py [--seconds-per-image 1.5] [--cold-start-s 30]
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Policy:
    name: str
    target: int  # in-flight requests per replica before scaling up
    max_replicas: int
    scale_down_s: float  # idle time before a replica is released
    min_replicas: int = 0


POLICIES = [
    Policy("fast-scale (max 16, 60 s down)", target=2, max_replicas=16, scale_down_s=60),
    Policy("steady (max 6, 600 s down)", target=2, max_replicas=6, scale_down_s=600),
]


def workload(seed: int, hours: float = 6.0) -> list[float]:
    rng = random.Random(seed)
    horizon = hours * 3600
    arrivals = []
    t = 0.0
    while t < horizon:  # the trickle: one image every ~120 s
        t += rng.expovariate(1 / 120)
        arrivals.append(t)
    for start, images, spread_s in ((1800, 1500, 300), (9000, 3000, 600), (16200, 800, 120)):
        arrivals += [start + rng.uniform(0, spread_s) for _ in range(images)]
    return sorted(a for a in arrivals if a < horizon)


def simulate(arrivals: list[float], policy: Policy, service_s: float, cold_start_s: float, tick_s: float = 1.0) -> dict:
    """Stepped every `tick_s` (1 s: finer than any wait that matters here)."""
    queue: list[float] = []  # arrival times of waiting requests (FIFO)
    replicas: list[dict] = []  # {"ready_at", "busy_until", "idle_since", "started"}
    waits: list[float] = []
    gpu_seconds = 0.0
    peak = 0
    next_arrival = 0
    t = 0.0
    end = arrivals[-1] + 3600
    while t <= end:
        while next_arrival < len(arrivals) and arrivals[next_arrival] <= t:
            queue.append(arrivals[next_arrival])
            next_arrival += 1
        # hand waiting requests to ready, free replicas
        for replica in replicas:
            if replica["ready_at"] <= t and replica["busy_until"] <= t and queue:
                arrived = queue.pop(0)
                start = max(t, replica["busy_until"])
                waits.append(start - arrived)
                replica["busy_until"] = start + service_s
                replica["idle_since"] = replica["busy_until"]
        # autoscale on in-flight work (queued + rendering)
        in_flight = len(queue) + sum(1 for r in replicas if r["busy_until"] > t)
        wanted = min(policy.max_replicas, max(policy.min_replicas, -(-in_flight // policy.target)))
        while len(replicas) < wanted:
            replicas.append({"ready_at": t + cold_start_s, "busy_until": t + cold_start_s, "idle_since": t + cold_start_s,
                             "started": t})
        for replica in list(replicas):
            idle = replica["busy_until"] <= t and replica["ready_at"] <= t
            if idle and t - replica["idle_since"] >= policy.scale_down_s and len(replicas) > policy.min_replicas and not queue:
                gpu_seconds += t - replica["started"]
                replicas.remove(replica)
        peak = max(peak, len(replicas))
        if not replicas and not queue and next_arrival >= len(arrivals):
            break
        t += tick_s
    gpu_seconds += sum(t - r["started"] for r in replicas)
    waits.sort()
    pct = lambda q: waits[min(len(waits) - 1, int(q * len(waits)))]  # noqa: E731
    return {
        "policy": policy.name,
        "images": len(waits),
        "queue_wait_p50_s": round(pct(0.50), 1),
        "queue_wait_p95_s": round(pct(0.95), 1),
        "queue_wait_max_s": round(waits[-1], 1),
        "peak_replicas": peak,
        "gpu_seconds_per_1000_images": round(gpu_seconds / len(waits) * 1000, 0),
        "busy_share": round(len(waits) * service_s / gpu_seconds, 3),
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds-per-image", type=float, default=1.5, help="GPU time per image (SDXL 1024, 30 steps)")
    parser.add_argument("--cold-start-s", type=float, default=30.0, help="scale-from-zero until a replica serves")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args(argv)
    arrivals = workload(args.seed)
    results = [simulate(arrivals, policy, args.seconds_per_image, args.cold_start_s) for policy in POLICIES]
    report = {"bench": "scaling", "seconds_per_image": args.seconds_per_image, "cold_start_s": args.cold_start_s,
              "requests": len(arrivals), "results": results}
    print(json.dumps(report))
    header = f"{'policy':<34}{'p50 wait s':>11}{'p95 wait s':>11}{'max wait s':>11}{'peak':>6}{'GPU-s/1k img':>14}{'busy':>7}"
    print(header)
    for r in results:
        print(f"{r['policy']:<34}{r['queue_wait_p50_s']:>11.1f}{r['queue_wait_p95_s']:>11.1f}{r['queue_wait_max_s']:>11.1f}"
              f"{r['peak_replicas']:>6}{r['gpu_seconds_per_1000_images']:>14.0f}{r['busy_share']:>7.2f}")
    return report


if __name__ == "__main__":
    main()
