"""One Settings object, read once from ATELIER_* environment variables, with embedded defaults.

Owns: every configuration knob of the service and its default. Nothing else reads the
environment for ATELIER_* settings. Must never import anything from the rest of `service`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Mapping

BACKENDS = ("eager", "compile", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("auto", "float32", "float16", "bfloat16")


class ConfigError(ValueError):
    """A setting has a value the service cannot run with."""


def _int(env: Mapping[str, str], name: str, default: int, minimum: int = 0) -> int:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be >= {minimum}, got {value}")
    return value


def _float(env: Mapping[str, str], name: str, default: float, minimum: float = 0.0) -> float:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if not value >= minimum or value == float("inf"):
        raise ConfigError(f"{name} must be a finite number >= {minimum}, got {raw!r}")
    return value


def _bool(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() in ("1", "true", "yes", "on"):
        return True
    if raw.lower() in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be a boolean (1/0, true/false), got {raw!r}")


def _list(env: Mapping[str, str], name: str, default: tuple[str, ...]) -> tuple[str, ...]:
    raw = env.get(name)
    if raw is None or raw.strip() == "":
        return default
    return tuple(item.strip() for item in raw.split(",") if item.strip())


def _choice(env: Mapping[str, str], name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env.get(name) or default
    base = value.split(":", 1)[0]  # "cuda:1" is a cuda device
    if base not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _networks(env: Mapping[str, str], name: str) -> tuple[str, ...]:
    """Comma-separated IP addresses or CIDR networks, each checked (normalised to CIDR)."""
    import ipaddress

    out = []
    for item in _list(env, name, ()):
        try:
            out.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ConfigError(f"{name} holds {item!r}, which is not an IP address or CIDR network") from None
    return tuple(out)


def _bounded(env: Mapping[str, str], name: str, default: int, minimum: int, maximum: int) -> int:
    value = _int(env, name, default, minimum=minimum)
    if value > maximum:
        raise ConfigError(f"{name} must be <= {maximum} (the API's own bound), got {value}")
    return value


def _fraction(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name)
    try:
        value = float(raw) if raw else default
    except ValueError:
        raise ConfigError(f"{name} must be a number between 0 and 1, got {raw!r}") from None
    if not 0.0 < value <= 1.0:
        raise ConfigError(f"{name} must be a number between 0 and 1, got {raw!r}")
    return value


def _trust_anchors(env: Mapping[str, str], home: Path) -> Path | None:
    raw = env.get("ATELIER_C2PA_TRUST_ANCHORS")
    if raw == "none":
        return None
    return Path(raw or home / "keys" / "root_ca.pem").expanduser().resolve()


def _internal_token(env: Mapping[str, str]) -> tuple[str | None, Path | None]:
    """The gateway-renderer secret (ATELIER_INTERNAL_TOKEN) or the file holding it; at most one."""
    token, file = env.get("ATELIER_INTERNAL_TOKEN") or None, env.get("ATELIER_INTERNAL_TOKEN_FILE") or None
    if token and file:
        raise ConfigError("set ATELIER_INTERNAL_TOKEN or ATELIER_INTERNAL_TOKEN_FILE, not both")
    if token is not None and len(token.strip()) < 32:
        raise ConfigError("ATELIER_INTERNAL_TOKEN must be at least 32 characters (e.g. `openssl rand -base64 32`)")
    return (token.strip() if token else None), (Path(file).expanduser().resolve() if file else None)


def _s3_url(env: Mapping[str, str], name: str) -> str | None:
    value = env.get(name) or None
    if value is not None and not (value.startswith("s3://") and len(value) > 5 and not value[5:].startswith("/")):
        raise ConfigError(f"{name} must be 's3://bucket[/prefix]', got {value!r}")
    return value.rstrip("/") if value else None


def _adapter_store(env: Mapping[str, str]) -> str:
    value = env.get("ATELIER_ADAPTER_STORE") or "local"
    if value == "local":
        return value
    if value.startswith("s3://") and len(value) > 5 and not value[5:].startswith("/"):
        return value.rstrip("/")
    raise ConfigError(f"ATELIER_ADAPTER_STORE must be 'local' or 's3://bucket[/prefix]', got {value!r}")


def _model_path(env: Mapping[str, str], name: str, demo_default: Path | None) -> Path | None:
    """A conditioning model's path: the setting, or the demo's when that exists; "off" disables."""
    raw = env.get(name)
    if raw == "off":
        return None
    if raw:
        return Path(raw).expanduser().resolve()
    return demo_default.resolve() if demo_default is not None and demo_default.exists() else None


def _asset_store(env: Mapping[str, str]) -> str:
    """`local`, an s3:// URL, or (unset) beside the adapter store."""
    raw = env.get("ATELIER_ASSET_STORE")
    if raw == "local":
        return raw
    return _s3_url(env, "ATELIER_ASSET_STORE") if raw else _adapter_store(env)


def _schedule(env: Mapping[str, str]) -> tuple[float, ...]:
    raw = _list(env, "ATELIER_WEBHOOK_SCHEDULE_S", ("0", "30", "120", "480", "1200"))
    try:
        delays = tuple(float(x) for x in raw)
    except ValueError:
        raise ConfigError(f"ATELIER_WEBHOOK_SCHEDULE_S must be comma-separated seconds, got {','.join(raw)!r}") from None
    if any(d < 0 for d in delays):
        raise ConfigError("ATELIER_WEBHOOK_SCHEDULE_S delays must be >= 0")
    return delays


@dataclass(frozen=True)
class Settings:
    """Everything the service can be configured with. See the README's configuration table."""

    home: Path = Path("var")
    base_model: Path = Path("var/demo/pipeline")
    adapters_dir: Path = Path("var/adapters")
    # "local" (files under adapters_dir) or "s3://bucket/prefix". S3 credentials come from the
    # standard AWS chain (env vars, profile, role); never from Atelier's own settings.
    adapter_store: str = "local"
    s3_endpoint_url: str | None = None
    s3_region: str | None = None
    # The adapter slot every twin is copied into: its rank bounds a twin's rank, its targets
    # bound the layers a twin may touch (both checked when a twin is registered).
    lora_slot_rank: int = 32
    # Lanes of the slot: how many distinct twins one pipeline batch may carry (eager, compile).
    slot_lanes: int = 4
    lora_targets: tuple[str, ...] = ("to_q", "to_k", "to_v", "to_out.0")
    # Tiered adapter cache budgets (bytes) and the disk tier's directory.
    cache_device_bytes: int = 2 * 1024**3
    cache_host_bytes: int = 8 * 1024**3
    cache_disk_bytes: int = 20 * 1024**3
    cache_dir: Path = Path("var/cache/adapters")
    prefetch: tuple[str, ...] = ()
    # The registry (tenants, API keys, twins, consent): SQLite under home by default, any
    # PostgreSQL URL in production, shared by every replica. Migrated at start-up unless off.
    db_url: str = field(default="sqlite:///var/registry.db", repr=False)
    db_migrate: bool = True
    # How often a replica polls the registry version to drop revoked twins' adapters and
    # cancel their in-flight generations (new requests always check the database itself).
    registry_poll_ms: int = 500
    # Catalogue jobs: this replica runs a job worker and a webhook sender (both share the
    # queue in the registry); a job whose replica stops renewing its lease for job_lease_s
    # is taken over. Webhook retries follow webhook_schedule_s (delays before tries 1..N).
    jobs_worker: bool = True
    job_lease_s: int = 30
    job_poll_ms: int = 500
    webhook_schedule_s: tuple[float, ...] = (0, 30, 120, 480, 1200)
    # An item whose S3 delivery fails is retried (backoff with jitter, from any gateway) until
    # this long after its first failed try; only then is it failed with delivery_failed.
    delivery_deadline_s: int = 86400
    # Development only: callback URLs may be http:// and point at loopback/private addresses.
    dev_callbacks: bool = False
    max_job_body_bytes: int = 1024**2
    # Finished jobs (results, inline images, webhook logs) are deleted this long after they end.
    job_retention_days: int = 30
    max_upload_bytes: int = 1024**3
    # Provenance: C2PA signing key and chain (PEM), trust anchors for verification.
    c2pa_chain: Path = Path("var/keys/signer_chain.pem")
    c2pa_key: Path = Path("var/keys/signer_key.pem")
    c2pa_trust_anchors: Path | None = Path("var/keys/root_ca.pem")
    max_verify_bytes: int = 25 * 1024**2
    max_verify_pixels: int = 16 * 1024**2
    # /v1/verify parse bounds, checked before Pillow or the C2PA reader see the file: container
    # chunks (PNG chunks, JPEG segments, WebP chunks), metadata (non-pixel) chunks and their
    # bytes, JPEG scans, a time budget between stages, and concurrent verifies per key and in all.
    verify_max_chunks: int = 8192
    verify_max_metadata_chunks: int = 256
    verify_max_metadata_bytes: int = 8 * 1024**2
    verify_max_scans: int = 64
    verify_budget_ms: int = 5000
    verify_concurrency_per_key: int = 2
    verify_concurrency: int = 4
    # The public check (POST /v1/detect, Studio's Detect page; no key): per source address,
    # checks per minute (over it: 429 before the body is read), and checks a gateway runs at
    # once (one per source; over it: 503 detect_busy). Same decoding bounds as verify.
    detect_requests_per_minute: int = 30
    detect_concurrency: int = 2
    # Before authentication, per source address: requests per minute (0: off) and refusals of
    # unauthenticated requests per minute before the source is refused outright (429) for the
    # rest of the minute (0: off). X-Forwarded-For counts only from trusted proxies (CIDRs).
    source_requests_per_minute: int = 6000
    source_failures_per_minute: int = 30
    trusted_proxies: tuple[str, ...] = ()
    # The secret only gateways and renderers hold (service.admission_seal): every renderer route
    # but the probes needs it as a bearer token, and each render item carries a seal derived
    # from it. Given inline or as a file (a mounted Secret); with neither, one is generated once
    # into home/keys/internal_token (0600), which the processes of `bentoml serve` share.
    internal_token: str | None = field(default=None, repr=False)
    internal_token_file: Path | None = None
    # Generation bounds below the API's own (2048 px, 100 steps, 4 images): smaller ones for a
    # test or a small deployment; larger requests are refused (422) before any GPU work.
    max_image_side: int = 2048
    max_steps: int = 100
    max_images: int = 4
    # Audit log: local directory (fsync'ed before each response), checkpoint signing key,
    # checkpoint cadence, segment size, prompt storage, and WORM shipping to S3.
    audit_dir: Path = Path("var/audit")
    audit_key: Path = Path("var/keys/audit_ed25519.pem")
    audit_checkpoint_records: int = 1000
    audit_checkpoint_seconds: int = 60
    audit_segment_records: int = 10000
    audit_prompts: str = "verbatim"
    audit_s3: str | None = None
    audit_retention_days: int = 2555
    audit_heartbeat_s: float = 10.0
    audit_orphan_after_s: float = 60.0
    device: str = "auto"
    dtype: str = "auto"
    backend: str = "eager"
    # torch.compile: "regional" (the UNet's repeated blocks) or "full"; dynamic shapes; the
    # compiler ("inductor"; "aot_eager" traces without generating code).
    compile_mode: str = "regional"
    compile_dynamic: bool = True
    compile_compiler: str = "inductor"
    # TensorRT: the directory holding manifest.json and engines (builds/compile.py), and the
    # backend to use instead when they do not match this machine (None: refuse to start).
    engines_dir: Path = Path("var/engines")
    # s3://bucket/prefix holding what `builds/compile.py upload` put there: downloaded into
    # engines_dir and sha256-checked at start-up, before /readyz (cold starts of new replicas).
    engines_s3: str | None = None
    # s3://bucket/prefix of the base pipeline (`builds/compile.py upload-model`): downloaded
    # into $ATELIER_HOME/models/base and sha256-checked at start-up, then loaded from there.
    base_model_s3: str | None = None
    backend_fallback: str | None = None
    warmup: bool = True
    # Sizes (WIDTHxHEIGHT px) the eager and compile backends warm up at before ready: set the
    # production sizes (e.g. "1024x1024,1024x1280"); the default keeps CPU start-up cheap.
    # The tensorrt backend warms up at its engines' OPT shapes instead.
    warmup_sizes: tuple[str, ...] = ("256x256",)
    # Intra-op threads on CPU. BentoML calls sync APIs from worker threads, where OpenMP
    # parallelism measured 2x slower than one thread on a 2-core machine (docs/BENCHMARKS.md).
    # 0 leaves torch's default. Has no effect on GPU.
    cpu_threads: int = 1
    max_body_bytes: int = 64 * 1024
    log_level: str = "INFO"
    # The renderer service: worker processes per replica (each loads the pipeline; >1 only for
    # CPU tests and benches), render calls one worker takes at once (more are answered 429 and
    # retried by the gateway elsewhere), and the most replicas the platform may start.
    renderer_workers: int = 1
    renderer_concurrency: int = 1
    renderer_max_replicas: int = 1
    # The gateway's dispatcher of catalogue items: render calls in flight (0: max replicas x
    # workers x concurrency), items of one twin and shape per call, and how long a synchronous
    # generation waits for a busy or starting renderer before answering 503.
    dispatch_window: int = 0
    dispatch_batch: int = 4
    render_wait_s: int = 120
    # Synchronous generations that arrive within this many ms (for any twins, same shape) share
    # one render call (service.jobs.coalescer); 0 sends each alone.
    coalesce_ms: int = 5
    # Input images (garments, poses, masks, source photos): where they live ("local" under
    # home/assets, or an s3:// URL; default: beside the adapter store), and their bounds.
    asset_store: str = "local"
    max_asset_bytes: int = 20 * 1024**2
    max_asset_pixels: int = 4096 * 4096
    # Asset URL fetches: one deadline over connect, headers and body; fetches at once (their own
    # threads, never the server's), and of those at most this many for one tenant.
    fetch_timeout_s: int = 20
    fetch_concurrency: int = 8
    fetch_concurrency_per_tenant: int = 4
    # Keep each delivered generation's first image (as a tenant asset) so an edit can name
    # its generation id; deleted with the job-retention rule.
    keep_outputs: bool = True
    # Tenants whose uploaded photos (images that are not Atelier generations) may be edited
    # as a twin; none by default: an edit otherwise starts from the same twin's own generation.
    edit_upload_tenants: tuple[str, ...] = ()
    # Conditioning models of the renderer (local paths; None or "off" disables that kind, whose
    # requests are then refused with 422 conditioning_unavailable): the IP-Adapter file and its
    # image encoder directory (default: image_encoder/ beside the file), the pose ControlNet and
    # the 9-channel inpainting UNet. The demo builds tiny random ones under home/demo.
    ip_adapter: Path | None = None
    ip_adapter_encoder: Path | None = None
    pose_controlnet: Path | None = None
    inpaint_model: Path | None = None
    garment_slots: int = 4
    garment_cache_device_bytes: int = 256 * 1024**2
    garment_cache_host_bytes: int = 2 * 1024**3
    # A zero-shot garment classifier (a local CLIPModel directory, never a hub name; unset or
    # "off": none runs, and labels are all there is). Configuring it loads torch and
    # transformers into the gateway (service.assets.garment_classifier). A restricted category
    # (lingerie, swimwear, sleepwear) counts when it is the top one or scores >= the threshold.
    garment_classifier_path: Path | None = None
    garment_classifier_threshold: float = 0.3
    extra: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "Settings":
        env = os.environ if env is None else env
        home = Path(env.get("ATELIER_HOME") or "var").expanduser().resolve()
        return cls(
            home=home,
            base_model=Path(env.get("ATELIER_BASE_MODEL") or home / "demo" / "pipeline").expanduser().resolve(),
            adapters_dir=Path(env.get("ATELIER_ADAPTERS_DIR") or home / "adapters").expanduser().resolve(),
            adapter_store=_adapter_store(env),
            s3_endpoint_url=env.get("ATELIER_S3_ENDPOINT_URL") or None,
            s3_region=env.get("ATELIER_S3_REGION") or None,
            lora_slot_rank=_int(env, "ATELIER_LORA_SLOT_RANK", 32, minimum=1),
            slot_lanes=_int(env, "ATELIER_SLOT_LANES", 4, minimum=1),
            lora_targets=_list(env, "ATELIER_LORA_TARGETS", ("to_q", "to_k", "to_v", "to_out.0")),
            cache_device_bytes=_int(env, "ATELIER_CACHE_DEVICE_BYTES", 2 * 1024**3),
            cache_host_bytes=_int(env, "ATELIER_CACHE_HOST_BYTES", 8 * 1024**3),
            cache_disk_bytes=_int(env, "ATELIER_CACHE_DISK_BYTES", 20 * 1024**3),
            cache_dir=Path(env.get("ATELIER_CACHE_DIR") or home / "cache" / "adapters").expanduser().resolve(),
            prefetch=_list(env, "ATELIER_PREFETCH", ()),
            db_url=env.get("ATELIER_DB_URL") or f"sqlite:///{home / 'registry.db'}",
            db_migrate=_bool(env, "ATELIER_DB_MIGRATE", True),
            registry_poll_ms=_int(env, "ATELIER_REGISTRY_POLL_MS", 500, minimum=50),
            jobs_worker=_bool(env, "ATELIER_JOBS_WORKER", True),
            job_lease_s=_int(env, "ATELIER_JOB_LEASE_S", 30, minimum=2),
            job_poll_ms=_int(env, "ATELIER_JOB_POLL_MS", 500, minimum=10),
            webhook_schedule_s=_schedule(env),
            delivery_deadline_s=_int(env, "ATELIER_DELIVERY_DEADLINE_S", 86400, minimum=0),
            dev_callbacks=_bool(env, "ATELIER_DEV_CALLBACKS", False),
            max_job_body_bytes=_int(env, "ATELIER_MAX_JOB_BODY_BYTES", 1024**2, minimum=1024),
            job_retention_days=_int(env, "ATELIER_JOB_RETENTION_DAYS", 30, minimum=1),
            max_upload_bytes=_int(env, "ATELIER_MAX_UPLOAD_BYTES", 1024**3, minimum=1024),
            c2pa_chain=Path(env.get("ATELIER_C2PA_CHAIN") or home / "keys" / "signer_chain.pem").expanduser().resolve(),
            c2pa_key=Path(env.get("ATELIER_C2PA_KEY") or home / "keys" / "signer_key.pem").expanduser().resolve(),
            c2pa_trust_anchors=_trust_anchors(env, home),
            max_verify_bytes=_int(env, "ATELIER_MAX_VERIFY_BYTES", 25 * 1024**2, minimum=1024),
            max_verify_pixels=_int(env, "ATELIER_MAX_VERIFY_PIXELS", 16 * 1024**2, minimum=1),
            verify_max_chunks=_int(env, "ATELIER_VERIFY_MAX_CHUNKS", 8192, minimum=16),
            verify_max_metadata_chunks=_int(env, "ATELIER_VERIFY_MAX_METADATA_CHUNKS", 256, minimum=8),
            verify_max_metadata_bytes=_int(env, "ATELIER_VERIFY_MAX_METADATA_BYTES", 8 * 1024**2, minimum=64 * 1024),
            verify_max_scans=_int(env, "ATELIER_VERIFY_MAX_SCANS", 64, minimum=1),
            verify_budget_ms=_int(env, "ATELIER_VERIFY_BUDGET_MS", 5000, minimum=100),
            verify_concurrency_per_key=_int(env, "ATELIER_VERIFY_CONCURRENCY_PER_KEY", 2, minimum=1),
            verify_concurrency=_int(env, "ATELIER_VERIFY_CONCURRENCY", 4, minimum=1),
            detect_requests_per_minute=_int(env, "ATELIER_DETECT_REQUESTS_PER_MINUTE", 30, minimum=1),
            detect_concurrency=_int(env, "ATELIER_DETECT_CONCURRENCY", 2, minimum=1),
            source_requests_per_minute=_int(env, "ATELIER_SOURCE_REQUESTS_PER_MINUTE", 6000),
            source_failures_per_minute=_int(env, "ATELIER_SOURCE_FAILURES_PER_MINUTE", 30),
            trusted_proxies=_networks(env, "ATELIER_TRUSTED_PROXIES"),
            internal_token=_internal_token(env)[0],
            internal_token_file=_internal_token(env)[1],
            max_image_side=_bounded(env, "ATELIER_MAX_IMAGE_SIDE", 2048, 256, 2048),
            max_steps=_bounded(env, "ATELIER_MAX_STEPS", 100, 1, 100),
            max_images=_bounded(env, "ATELIER_MAX_IMAGES", 4, 1, 4),
            audit_dir=Path(env.get("ATELIER_AUDIT_DIR") or home / "audit").expanduser().resolve(),
            audit_key=Path(env.get("ATELIER_AUDIT_KEY") or home / "keys" / "audit_ed25519.pem").expanduser().resolve(),
            audit_checkpoint_records=_int(env, "ATELIER_AUDIT_CHECKPOINT_RECORDS", 1000, minimum=1),
            audit_checkpoint_seconds=_int(env, "ATELIER_AUDIT_CHECKPOINT_SECONDS", 60, minimum=1),
            audit_segment_records=_int(env, "ATELIER_AUDIT_SEGMENT_RECORDS", 10000, minimum=1),
            audit_prompts=_choice(env, "ATELIER_AUDIT_PROMPTS", "verbatim", ("verbatim", "sha256")),
            audit_s3=_s3_url(env, "ATELIER_AUDIT_S3"),
            audit_retention_days=_int(env, "ATELIER_AUDIT_RETENTION_DAYS", 2555, minimum=1),
            audit_heartbeat_s=_float(env, "ATELIER_AUDIT_HEARTBEAT_S", 10.0, minimum=0.05),
            audit_orphan_after_s=_float(env, "ATELIER_AUDIT_ORPHAN_AFTER_S", 60.0, minimum=0.1),
            device=_choice(env, "ATELIER_DEVICE", "auto", DEVICES),
            dtype=_choice(env, "ATELIER_DTYPE", "auto", DTYPES),
            backend=_choice(env, "ATELIER_BACKEND", "eager", BACKENDS),
            compile_mode=_choice(env, "ATELIER_COMPILE_MODE", "regional", ("regional", "full")),
            compile_dynamic=_bool(env, "ATELIER_COMPILE_DYNAMIC", True),
            compile_compiler=_choice(env, "ATELIER_COMPILE_COMPILER", "inductor", ("inductor", "aot_eager", "eager")),
            engines_dir=Path(env.get("ATELIER_ENGINES_DIR") or home / "engines").expanduser().resolve(),
            engines_s3=_s3_url(env, "ATELIER_ENGINES_S3"),
            base_model_s3=_s3_url(env, "ATELIER_BASE_MODEL_S3"),
            backend_fallback=_choice(env, "ATELIER_BACKEND_FALLBACK", "eager", ("eager", "compile")) if env.get("ATELIER_BACKEND_FALLBACK") else None,
            warmup=_bool(env, "ATELIER_WARMUP", True),
            warmup_sizes=_list(env, "ATELIER_WARMUP_SIZES", ("256x256",)),
            cpu_threads=_int(env, "ATELIER_CPU_THREADS", 1, minimum=0),
            max_body_bytes=_int(env, "ATELIER_MAX_BODY_BYTES", 64 * 1024, minimum=1024),
            log_level=(env.get("ATELIER_LOG_LEVEL") or "INFO").upper(),
            renderer_workers=_int(env, "ATELIER_RENDERER_WORKERS", 1, minimum=1),
            renderer_concurrency=_int(env, "ATELIER_RENDERER_CONCURRENCY", 1, minimum=1),
            renderer_max_replicas=_int(env, "ATELIER_RENDERER_MAX_REPLICAS", 1, minimum=1),
            dispatch_window=_int(env, "ATELIER_DISPATCH_WINDOW", 0, minimum=0),
            dispatch_batch=_int(env, "ATELIER_DISPATCH_BATCH", 4, minimum=1),
            render_wait_s=_int(env, "ATELIER_RENDER_WAIT_S", 120, minimum=1),
            coalesce_ms=_int(env, "ATELIER_COALESCE_MS", 5, minimum=0),
            asset_store=_asset_store(env),
            max_asset_bytes=_int(env, "ATELIER_MAX_ASSET_BYTES", 20 * 1024**2, minimum=1024),
            max_asset_pixels=_int(env, "ATELIER_MAX_ASSET_PIXELS", 4096 * 4096, minimum=1024),
            fetch_timeout_s=_bounded(env, "ATELIER_FETCH_TIMEOUT_S", 20, 1, 600),
            fetch_concurrency=_bounded(env, "ATELIER_FETCH_CONCURRENCY", 8, 1, 256),
            fetch_concurrency_per_tenant=_bounded(env, "ATELIER_FETCH_CONCURRENCY_PER_TENANT", 4, 1, 256),
            keep_outputs=_bool(env, "ATELIER_KEEP_OUTPUTS", True),
            edit_upload_tenants=_list(env, "ATELIER_EDIT_UPLOAD_TENANTS", ()),
            ip_adapter=_model_path(env, "ATELIER_IP_ADAPTER", home / "demo" / "ip_adapter" / "ip-adapter-plus.safetensors"),
            ip_adapter_encoder=_model_path(env, "ATELIER_IP_ADAPTER_ENCODER", None),
            pose_controlnet=_model_path(env, "ATELIER_POSE_CONTROLNET", home / "demo" / "pose_controlnet"),
            inpaint_model=_model_path(env, "ATELIER_INPAINT_MODEL", home / "demo" / "inpaint"),
            garment_slots=_int(env, "ATELIER_GARMENT_SLOTS", 4, minimum=1),
            garment_cache_device_bytes=_int(env, "ATELIER_GARMENT_CACHE_DEVICE_BYTES", 256 * 1024**2),
            garment_cache_host_bytes=_int(env, "ATELIER_GARMENT_CACHE_HOST_BYTES", 2 * 1024**3),
            garment_classifier_path=_model_path(env, "ATELIER_GARMENT_CLASSIFIER_PATH", None),
            garment_classifier_threshold=_fraction(env, "ATELIER_GARMENT_CLASSIFIER_THRESHOLD", 0.3),
        )

    @property
    def dispatch_lanes(self) -> int:
        """Distinct twins one render call may carry: the slot's lanes, or 1 under TensorRT (an
        engine is refit for one twin at a time, so its batches group by twin)."""
        return 1 if self.backend == "tensorrt" else self.slot_lanes

    @property
    def window(self) -> int:
        """Render calls the dispatcher keeps in flight: the load the autoscaler sees."""
        return self.dispatch_window or self.renderer_max_replicas * self.renderer_workers * self.renderer_concurrency


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read from the environment on first use."""
    return Settings.from_env()
