"""The generation engine: one loaded diffusion pipeline, `generate(request) -> result`.

Owns: the staged run of one batch (its adapters loading while it waits for the pipeline and
encodes its prompts, then denoising, VAE decoding, encoding to image files), seeds, the
pipeline lock, per-stage timings, and stopping one twin's rows of a mixed batch while the
others finish (`service.engine.stops`). Reads top to bottom like a
diffusers pipeline. Must never speak HTTP or import bentoml.
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
import uuid
from contextlib import contextmanager
from typing import Callable, Iterator, NoReturn

import torch

from service.config import Settings
from service.engine.adapter_loads import AdapterLoads
from service.engine.backends import Backend, create_backend
from service.engine.backends.eager import EagerBackend
from service.engine.output_check import check_pixels
from service.engine.loading import fingerprint_pipeline, load_pipeline, pick_device, pick_dtype
from service.engine.stops import PartialBatch, StopTwins
from service.errors import AtelierError
from service.registry import Registry
from service.imaging import ImageMarker, MarkContext, PlainEncoder
from service.rendering import GeneratedImage, GenerationResult, group_key
from service.schemas import MAX_SEED, GenerateRequest
from service.twins.adapters import TwinAdapters
from service.twins.records import TwinRecord
from service.twins.cache import CacheEvents

# Each result's timings (ms): `adapter_wait` is the part of `adapter` spent waiting for a load
# that had not finished when the batch was ready to denoise (service.engine.adapter_loads).
TIMINGS = ("queue", "adapter", "adapter_wait", "encode", "denoise", "decode", "postprocess", "total")
WARMUP_REQUEST = GenerateRequest(twin_id=None, prompt="warm-up", width=256, height=256, steps=2, seed=0)


def warmup_request(shape) -> GenerateRequest:
    """WARMUP_REQUEST at a backend's warm-up shape (`backends.WarmupShape`): its size and image
    count, guidance 5 (CFG: the UNet batch doubled) or 1 (no CFG)."""
    return GenerateRequest(twin_id=None, prompt="warm-up", width=shape.width, height=shape.height, steps=2, seed=0,
                           num_images=shape.images, guidance_scale=5.0 if shape.cfg else 1.0)


class StageTimer:
    """Wall-clock milliseconds per named stage; waits for the GPU at each stage's end."""

    def __init__(self, device: torch.device):
        self.device = device
        self.ms: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - start) * 1000.0


class Engine:
    """A loaded pipeline plus the twins it can render. Thread-safe: one generation at a time."""

    def __init__(self, pipe, device: torch.device, backend: Backend | None, twins: TwinAdapters,
                 marker: ImageMarker | None = None, conditioning=None):
        self.pipe = pipe
        self.conditioning = conditioning  # ConditioningModels (garment, pose, edit), or None
        self.device = device
        self.backend = backend if backend is not None else EagerBackend()  # None: the modules as loaded
        self.twins = twins
        self.loads = AdapterLoads(twins)  # a call's cold adapters load while it waits and encodes
        self.marker = marker or PlainEncoder()
        self.base_model_id: str | None = None  # set from the pipeline directory when loaded from settings
        self.ready = False
        self.startup_ms: dict[str, float] = {}  # phase -> milliseconds, from from_settings
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Settings, registry: Registry, events: CacheEvents | None = None,
                      marker: ImageMarker | None = None) -> "Engine":
        phases: dict[str, float] = {}
        clock = time.perf_counter()

        def phase(name: str) -> None:
            nonlocal clock
            now = time.perf_counter()
            phases[name] = round((now - clock) * 1000.0, 1)
            clock = now

        device = pick_device(settings.device)
        if device.type == "cpu" and settings.cpu_threads:
            torch.set_num_threads(settings.cpu_threads)
        model_dir = settings.base_model
        if settings.base_model_s3:  # a replica on a fresh disk: fetch and verify the weights first
            from service.engine.artifact_sync import download_artifacts

            model_dir = settings.home / "models" / "base"
            download_artifacts(settings.base_model_s3, model_dir, settings.s3_endpoint_url, settings.s3_region)
            phase("download_weights")
        pipe = load_pipeline(model_dir, device, pick_dtype(settings.dtype, device))
        phase("load_weights")
        twins = TwinAdapters.build(settings, registry, pipe.unet, device, events)  # the slot goes on before compiling
        conditioning = load_conditioning(settings, pipe, twins)  # IP-Adapter and second UNet before compiling too
        if conditioning is not None:
            phase("load_conditioning")
        if settings.engines_s3 and settings.backend == "tensorrt":
            from service.engine.artifact_sync import download_artifacts

            download_artifacts(settings.engines_s3, settings.engines_dir, settings.s3_endpoint_url, settings.s3_region)
            phase("download_engines")
        backend = create_backend(settings)
        backend.prepare(pipe)
        if conditioning is not None:
            for unet in conditioning.extra_unets():  # the inpainting UNet, compiled like the base one
                backend.prepare_unet(unet)
        phase("prepare_backend")
        engine = cls(pipe, device, backend, twins, marker, conditioning)
        engine.base_model_id = f"{model_dir.name}@{fingerprint_pipeline(model_dir)[:16]}"
        phase("fingerprint")
        if settings.prefetch:
            engine.prefetch(list(settings.prefetch))
            phase("prefetch_twins")
        if settings.warmup:
            engine.warm_up()  # pays first-call costs (and compilation, for the compile backend)
            phase("warmup")
        engine.startup_ms = phases
        engine.ready = True
        return engine

    def prefetch(self, twin_ids: list[str]) -> dict[str, str]:
        """Warm twins' adapters into the device tier; twin id -> serving tier or error code."""
        records, results = [], {}
        for twin_id in twin_ids:
            try:
                records.append(self.twins.catalog.get(twin_id))
            except AtelierError as exc:
                results[twin_id] = f"error:{exc.code}"
        return results | self.twins.cache.prefetch(records)

    def evict(self, twin_id: str) -> list[str]:
        """Drop a twin's adapter from every cache tier and from the slot."""
        return self.drop_adapter(self.twins.catalog.get(twin_id).sha256)

    def drop_adapter(self, sha256: str) -> list[str]:
        """Remove an adapter from every cache tier and, under the pipeline lock, from the slot."""
        removed = self.twins.cache.evict(sha256)
        with self._lock:
            if self.adapter_in_use() == sha256:
                self.backend.use_adapter(self.twins.slot, None)
                removed.append("slot")
            elif self.twins.slot.drop(sha256):  # one of the slot's lanes held it (a mixed batch)
                removed.append("slot")
        return removed

    def adapter_in_use(self) -> str | None:
        """The sha256 of the adapter the pipeline renders with now (slot or engine weights)."""
        return self.backend.adapter_in_use(self.twins.slot)

    def twin_state(self, record: TwinRecord) -> dict:
        return {
            "id": record.id,
            "display_name": record.display_name,
            "adapter_path": record.adapter_path,
            "sha256": record.sha256,
            "rank": record.rank,
            "tiers": self.twins.cache.tiers_of(record.sha256),
            "in_slot": self.adapter_in_use() == record.sha256 or (not self.backend.handles_adapters
                                                                  and record.sha256 in self.twins.slot.lane_owners),
        }

    def twin_states(self) -> list[dict]:
        return [self.twin_state(record) for record in self.twins.catalog.all()]

    def warm_up(self) -> list[GenerationResult]:
        """A small generation at each of the backend's warm-up shapes (ATELIER_WARMUP_SIZES; the
        engines' OPT shapes under tensorrt), so requests there pay no first-call or compile costs."""
        shapes = self.backend.warmup_shapes()
        requests = [warmup_request(s) for s in shapes] or [WARMUP_REQUEST]
        results = [self.generate(request) for request in requests]
        if self.conditioning is not None:  # each conditioned pipeline once per size (pose, edit)
            for request in {(r.width, r.height): r for r in requests}.values():
                for conditioning in self.conditioning.warmup_conditionings(request.width, request.height)[1:]:
                    results.append(self.generate(request, conditioning=conditioning))
        return results

    def generate(self, request: GenerateRequest, between_steps: Callable[[], None] | None = None,
                 conditioning=None, source: tuple[bytes, str, str] | None = None) -> GenerationResult:
        """Render one request with a fresh generation id (and a random seed unless it gives one)."""
        seed = request.seed if request.seed is not None else secrets.randbelow(MAX_SEED + 1)
        return self.generate_batch([(request, seed, uuid.uuid4().hex)], between_steps, conditioning, source)[0]

    def generate_batch(self, items: list[tuple[GenerateRequest, int, str]],
                       between_steps: Callable[[], None] | None = None, conditioning=None,
                       source: tuple[bytes, str, str] | None = None,
                       licences: dict[str, dict] | None = None) -> list[GenerationResult]:
        """Render requests that share a shape and their conditioning (`group_key` but the twin)
        as one pipeline batch. The items may name up to ATELIER_SLOT_LANES distinct twins (and
        the base model) on the eager and compile backends: each row reads its twin's lane of the
        slot, and renders the image it renders alone. The TensorRT backend takes one twin per
        batch; an edit's batch one twin too (the inpainting UNet's slot has one lane).

        `items` are (request, seed, generation_id). Row i of a request uses seed + i, so every
        row equals its single render. `conditioning` (a `service.conditioning.Conditioning`
        with decoded images) applies to every row; `source` is an edit's source image (bytes,
        format, title), named in each result's C2PA manifest; `licences` maps a generation id
        to what licensed it (`RenderLicence.assertion()`), named in its images' manifests
        (none for an item it does not name). `between_steps` runs after
        every denoising step; an exception it raises stops the generation there and
        propagates (how a revoked twin's in-flight generation is cancelled), except
        `StopTwins` naming some of a mixed batch's twins: those twins' rows stop (the base
        model's lane from then on, images discarded) and the other rows finish. When some
        items finished and others stopped (that, or a twin whose adapter failed to load),
        `PartialBatch` carries both (`service.engine.stops`)."""
        if not items or len({group_key(request)[1:5] for request, _, _ in items}) != 1:
            raise ValueError("a batch must share one size, step count and guidance scale")
        twin_ids = list(dict.fromkeys(request.twin_id for request, _, _ in items))
        mixed = len(twin_ids) > 1
        if mixed:
            named = [t for t in twin_ids if t is not None]
            if self.backend.handles_adapters:
                raise ValueError(f"the {self.backend.name} backend renders one twin per batch: group items by twin")
            if len(named) > self.twins.slot.lanes or not self.twins.slot.mixed:
                raise ValueError(f"a batch may name at most {self.twins.slot.lanes if self.twins.slot.mixed else 1} "
                                 f"distinct twins (ATELIER_SLOT_LANES), got {len(named)}")
            if conditioning is not None and conditioning.edit is not None:
                raise ValueError("an edit's batch renders one twin (the inpainting UNet's slot has one lane)")
        # Refused before any GPU work: a shape or size the backend cannot serve (a 422 naming the range).
        for request, _, _ in items:
            self.backend.check_request(request)
        self.backend.check_shape(items[0][0].width, items[0][0].height, sum(r.num_images for r, _, _ in items),
                                 items[0][0].guidance_scale)
        if conditioning is not None and (conditioning.garments or conditioning.pose or conditioning.edit) \
                and self.conditioning is None:
            from service.conditioning import ConditioningUnavailable

            raise ConditioningUnavailable(f"the {self.backend.name} backend of this renderer serves text-only requests: "
                                          "garment, pose and edit conditioning need the eager or compile backend "
                                          "with their models configured", field="garments")
        started = time.perf_counter()
        timer = StageTimer(self.device)

        # 1. The twins' adapters start towards the device through the cache tiers, outside the
        #    lock: a cold one loads while this call waits for the pipeline and encodes its
        #    prompts (service.engine.adapter_loads), and never stalls other twins' generations.
        loads = self.loads.start([t for t in twin_ids if t is not None])

        with timer.stage("queue"):
            self._lock.acquire()
        try:
            rendered = self._render_locked(items, timer, loads, between_steps, conditioning, mixed)
        finally:
            self._lock.release()
        pil_images, components, loaded, stopped = rendered

        # 6. Mark (watermark, metadata, signature) and encode to files, outside the lock: the
        #    pipeline is free for the next request. A marker failure fails the whole batch. The
        #    rows of a stopped twin are never marked: their items get its error instead.
        results: list[GenerationResult | None] = []
        errors: dict[str, BaseException] = {}
        row = 0
        shared = {k: v / len(items) for k, v in timer.ms.items()}  # the batch's stages, shared out
        shared["adapter_wait"] = loaded.waited_ms / len(items)
        for request, seed, generation_id in items:
            if request.twin_id in stopped:
                errors[generation_id] = stopped[request.twin_id]
                results.append(None)
                row += request.num_images
                continue
            ms = dict(shared)
            images = []
            for index in range(request.num_images):
                pil = pil_images[row]
                row += 1
                marked = self.marker.mark(pil, request.output_format,
                                          MarkContext(generation_id, request.twin_id, index, seed + index, source,
                                                      (licences or {}).get(generation_id)))
                for stage, value in marked.timings_ms.items():
                    ms[stage] = ms.get(stage, 0.0) + value
                images.append(GeneratedImage(
                    index=index, format=request.output_format, width=pil.width, height=pil.height, seed=seed + index,
                    data=marked.data, sha256=hashlib.sha256(marked.data).hexdigest(), watermark_id=marked.watermark_id,
                    manifest_sha256=marked.manifest_sha256,
                ))
            ms["total"] = (time.perf_counter() - started) * 1000.0
            timings = {k: round(ms.get(k, 0.0), 3) for k in TIMINGS}
            if "mark" in ms:
                timings["mark"] = round(ms["mark"], 3)
            item_adapter, item_tier = loaded.adapters.get(request.twin_id, (None, None))
            results.append(GenerationResult(generation_id, request.twin_id, seed, images, timings, item_tier,
                                            item_adapter.sha256 if item_adapter else None, components=components))
        if errors:
            raise PartialBatch(results, errors)
        return results  # type: ignore[return-value]

    def _render_locked(self, items: list[tuple[GenerateRequest, int, str]], timer: StageTimer, loads,
                       between_steps: Callable[[], None] | None, conditioning, mixed: bool):
        """Steps 2-5 under the pipeline lock: (PIL images, conditioning fingerprints, the
        adapters `Loaded`, twin id -> error of each twin stopped)."""
        pipe = self.pipe
        first = items[0][0]
        do_cfg = first.guidance_scale > 1.0 and pipe.unet.config.time_cond_proj_dim is None
        # 2. Text encoders, once per request; the rows of the batch are stacked (a twin's LoRA
        #    is on the UNet only, so this runs while a cold adapter is still loading).
        with timer.stage("encode"), torch.no_grad():
            per_request = [encode_prompts(pipe, request, self.device, do_cfg) for request, _, _ in items]
            embeds = {name: (torch.cat([e[name] for e in per_request]) if per_request[0][name] is not None else None)
                      for name in per_request[0]}
        # 3. The adapters, waiting for any load still running (`adapter_wait`). A twin whose
        #    load failed stops like a revoked one: its items fail, the others render.
        with timer.stage("adapter"):
            loaded = loads.collect()
        stopped: dict[str, BaseException] = dict(loaded.errors)
        named = {request.twin_id for request, _, _ in items if request.twin_id is not None}

        def all_stopped() -> bool:
            return all(request.twin_id in stopped for request, _, _ in items)

        def halt() -> NoReturn:
            errors = {stopped[r.twin_id] for r, _, _ in items}
            if len(errors) == 1:
                raise next(iter(errors))
            raise PartialBatch([None] * len(items), {g: stopped[r.twin_id] for r, _, g in items})

        if stopped and all_stopped():
            halt()

        def adapter_of(twin_id: str | None):
            return None if twin_id is None or twin_id in stopped else loaded.adapters[twin_id][0]

        # 4. Switch to the twins: in the slot (an in-place copy; nothing when it is already
        #    there), or, under TensorRT, fused and refit into the engine's touched weights. A
        #    mixed batch: each twin in a lane, each UNet row pointed at its item's lane.
        with timer.stage("adapter"):
            if mixed:
                self.backend.use_adapters(self.twins.slot, [adapter_of(r.twin_id) for r, _, _ in items
                                                            for _ in range(r.num_images)], do_cfg)
            else:
                self.backend.use_adapter(self.twins.slot, adapter_of(first.twin_id))

        def check() -> None:
            try:
                between_steps()
            except StopTwins as stop:
                fresh = {t: e for t, e in stop.errors.items() if t in named and t not in stopped}
                stopped.update(fresh)
                if all_stopped():
                    halt()
                if fresh:  # only in a mixed batch: the stopped twins' rows read the zero lane from now on
                    self.twins.slot.silence({loaded.adapters[t][0].sha256 for t in fresh if t in loaded.adapters})

        pil_images, components = self._denoise_and_decode(items, timer, embeds, do_cfg,
                                                          check if between_steps is not None else None,
                                                          conditioning, None if mixed else adapter_of(first.twin_id))
        return pil_images, components, loaded, stopped

    def _denoise_and_decode(self, items: list[tuple[GenerateRequest, int, str]], timer: StageTimer, embeds: dict,
                            do_cfg: bool, between_steps: Callable[[], None] | None = None, conditioning=None,
                            adapter=None) -> tuple[list, dict[str, str]]:
        """The batch's images, and the fingerprints of the conditioning models that made them."""
        pipe = self.pipe
        first = items[0][0]
        step_hook = None
        if between_steps is not None:
            def step_hook(_pipe, _step, _timestep, tensors):
                between_steps()
                return tensors
        rows = sum(request.num_images for request, _, _ in items)
        # One CPU generator per image: image i is reproducible alone from seed + i, on any device.
        generators = [torch.Generator(device="cpu").manual_seed(seed + i)
                      for request, seed, _ in items for i in range(request.num_images)]
        with torch.no_grad():
            # 5. The call's plan: which pipeline (text, pose, edit) and its garment image
            #    embeddings; then the denoising loop (the UNet), stopping at latents.
            plan = None
            if self.conditioning is not None:
                with timer.stage("encode"):
                    plan = self.conditioning.plan(conditioning, width=first.width, height=first.height, num_images=rows,
                                                  do_cfg=do_cfg, twin=adapter)
            run, extra = (plan.pipe, plan.kwargs) if plan is not None else (pipe, {})
            with timer.stage("denoise"):
                latents = run(
                    **embeds,
                    **extra,
                    width=first.width,
                    height=first.height,
                    num_inference_steps=first.steps,
                    guidance_scale=first.guidance_scale,
                    num_images_per_prompt=1,  # the embeddings already hold one row per image
                    generator=generators,
                    output_type="latent",
                    callback_on_step_end=step_hook,
                ).images
            # 5b. VAE decode to pixels (every pipeline shares the base VAE), then the plan's
            #     finish (an edit pastes the pixels outside its mask back from the source).
            with timer.stage("decode"):
                pixels = decode_latents(pipe, latents)
                check_pixels(pixels)  # non-finite or blank: render_failed, never marked or delivered
                images = pipe.image_processor.postprocess(pixels, output_type="pil")
                if plan is None:
                    return images, {}
                components = {name: self.conditioning.fingerprints.get(name, "") for name in plan.components}
                return plan.finish(images), components


def load_conditioning(settings: Settings, pipe, twins: TwinAdapters):
    """The garment, pose and edit models the settings name, on `pipe`; None when none is
    configured or the backend cannot serve them (tensorrt engines have no IP-Adapter inputs
    and no second UNet: conditioned requests are refused there with a 422 naming it)."""
    paths = {name: getattr(settings, name, None) for name in ("ip_adapter", "ip_adapter_encoder", "pose_controlnet",
                                                              "inpaint_model")}
    if settings.backend == "tensorrt" or not any(paths.values()):
        return None
    from service.conditioning import ConditioningModels, ConditioningPaths

    return ConditioningModels.load(
        pipe, ConditioningPaths(ip_adapter=paths["ip_adapter"], image_encoder=paths["ip_adapter_encoder"],
                                pose_controlnet=paths["pose_controlnet"], inpaint_model=paths["inpaint_model"]),
        slot=twins.slot, garment_slots=settings.garment_slots,
        cache_device_bytes=settings.garment_cache_device_bytes, cache_host_bytes=settings.garment_cache_host_bytes)


def encode_prompts(pipe, request: GenerateRequest, device: torch.device, do_cfg: bool) -> dict:
    """Run the text encoder(s) once; returns the embedding keyword arguments of the pipeline."""
    if hasattr(pipe, "text_encoder_2"):  # SDXL: two encoders, pooled embeddings
        pe, npe, ppe, nppe = pipe.encode_prompt(
            prompt=request.prompt,
            device=device,
            num_images_per_prompt=request.num_images,
            do_classifier_free_guidance=do_cfg,
            negative_prompt=request.negative_prompt,
        )
        return dict(prompt_embeds=pe, negative_prompt_embeds=npe, pooled_prompt_embeds=ppe, negative_pooled_prompt_embeds=nppe)
    pe, npe = pipe.encode_prompt(
        request.prompt, device, request.num_images, do_cfg, negative_prompt=request.negative_prompt
    )
    return dict(prompt_embeds=pe, negative_prompt_embeds=npe)


def decode_latents(pipe, latents: torch.Tensor) -> torch.Tensor:
    """VAE decode as the SDXL pipeline does it: fp32 when an fp16 VAE would overflow."""
    vae = pipe.vae
    needs_upcast = vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False)
    if needs_upcast:
        vae.to(dtype=torch.float32)
    latents = latents.to(next(vae.post_quant_conv.parameters()).dtype)
    mean, std = getattr(vae.config, "latents_mean", None), getattr(vae.config, "latents_std", None)
    if mean is not None and std is not None:
        mean_t = torch.tensor(mean).view(1, -1, 1, 1).to(latents.device, latents.dtype)
        std_t = torch.tensor(std).view(1, -1, 1, 1).to(latents.device, latents.dtype)
        latents = latents * std_t / vae.config.scaling_factor + mean_t
    else:
        latents = latents / vae.config.scaling_factor
    try:
        return vae.decode(latents, return_dict=False)[0]
    finally:
        if needs_upcast:
            vae.to(dtype=torch.float16)
