"""What an audit record says about one request: the event dicts the service appends.

Owns: the fields of each kind of event (generation, verify, admin, refused at the edge), the
outcome vocabulary (`ok`, `refused` with a reason code, `failed` with an error class) and
the prompt privacy switch (verbatim, or only its sha256). Records carry the API key's id,
never the key, and never image bytes. Must never write anything itself: the log does.
"""

from __future__ import annotations

import hashlib
from typing import Any

from service import __version__
from service.errors import AtelierError


def outcome_of(error: BaseException | None) -> dict[str, Any]:
    if error is None:
        return {"outcome": "ok"}
    if isinstance(error, AtelierError) and error.status < 500:
        refused = {"outcome": "refused", "reason": error.code, "status": error.status}
        if getattr(error, "category", None):  # the prompt policy's matched category
            refused["category"] = error.category
        return refused
    status = error.status if isinstance(error, AtelierError) else 500
    code = error.code if isinstance(error, AtelierError) else "internal_error"
    return {"outcome": "failed", "reason": code, "error_class": type(error).__name__, "status": status}


def _text(value: str | None, prompts: str) -> dict[str, Any]:
    if value is None:
        return {"verbatim": None}
    if prompts == "sha256":
        return {"sha256": hashlib.sha256(value.encode()).hexdigest()}
    return {"verbatim": value}


def generation_event(
    *,
    route: str,
    request,
    result=None,
    error: BaseException | None = None,
    client_ip: str | None,
    base_model_id: str | None,
    prompts: str = "verbatim",
    tenant: str | None = None,
    key_id: str | None = None,
    consent: dict | None = None,
    job: dict | None = None,
    components: dict | None = None,
    edit: dict | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event": "generation",
        "route": route,
        "job": job,
        "service_version": __version__,
        "tenant": tenant,
        "key_id": key_id,
        "client_ip": client_ip,
        "twin_id": request.twin_id,
        "consent": consent,
        "base_model": base_model_id,
        "params": {
            "prompt": _text(request.prompt, prompts),
            "negative_prompt": _text(request.negative_prompt, prompts),
            "width": request.width,
            "height": request.height,
            "steps": request.steps,
            "guidance_scale": request.guidance_scale,
            "num_images": request.num_images,
            "output_format": request.output_format,
            "use": request.use,
            "territory": getattr(request, "territory", None),
            "seed": request.seed,
        },
        "conditioning": conditioning_of(request, edit),
        "components": components,
        **outcome_of(error),
    }
    if result is not None:
        event.update(
            generation_id=result.generation_id,
            seed=result.seed,
            adapter_sha256=result.adapter_sha256,
            images=[
                {"index": img.index, "sha256": img.sha256, "watermark_id": img.watermark_id, "c2pa_manifest_sha256": img.manifest_sha256}
                for img in result.images
            ],
            timings_ms=result.timings_ms,
            renderer=getattr(result, "worker", None),
        )
    return event


def conditioning_of(request, edit: dict | None = None) -> dict[str, Any] | None:
    """The sha256 of every conditioning input a request names (asset ids are sha256s), with
    URLs reduced to their host; None for a text-only request."""
    garments = getattr(request, "garments", None) or []
    pose = getattr(request, "pose", None)
    if not garments and pose is None and edit is None:
        return None

    def source(ref) -> dict[str, Any]:
        return {"sha256": ref.asset_id} if ref.asset_id else {"url_host": (ref.url or "").split("/")[2:3]}

    out: dict[str, Any] = {"garments": [{**source(g), "category": g.category, "strength": g.strength} for g in garments]}
    if pose is not None:
        out["pose"] = ({"preset": pose.preset} if pose.preset else {"keypoints": True} if pose.keypoints else source(pose))
    if edit is not None:
        # source: "generation" (the same twin's own generation, named by id) or "upload" (an
        # uploaded photo, or an edit of one, that an operator let this tenant edit)
        out["edit"] = {"source_sha256": edit["source_asset_id"], "mask_sha256": edit["mask_asset_id"], "invert": edit["invert"],
                       "source": edit.get("origin", "upload"), "source_generation_id": edit.get("source_generation_id")}
    return out


def replay_event(*, route: str, client_ip: str | None, generation_id: str | None, tenant: str | None = None,
                 key_id: str | None = None) -> dict[str, Any]:
    """A stored response replayed for an Idempotency-Key: no new image was made."""
    return {"event": "idempotent_replay", "route": route, "service_version": __version__, "tenant": tenant,
            "key_id": key_id, "client_ip": client_ip, "generation_id": generation_id}


def verify_event(*, upload: bytes, report=None, error: BaseException | None = None, client_ip: str | None,
                 tenant: str | None = None, key_id: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event": "verify",
        "route": "/v1/verify",
        "service_version": __version__,
        "tenant": tenant,
        "key_id": key_id,
        "client_ip": client_ip,
        "upload_sha256": hashlib.sha256(upload).hexdigest() if upload else None,
        "upload_bytes": len(upload),
        **outcome_of(error),
    }
    if report is not None:
        event.update(
            watermark_id=report.watermark_id,
            generation_id=report.generation_id,
            c2pa_state=report.c2pa_state,
        )
    return event


def admin_event(*, action: str, client_ip: str | None, error: BaseException | None = None, **details: Any) -> dict[str, Any]:
    return {"event": f"admin.{action}", "service_version": __version__, "client_ip": client_ip, **details, **outcome_of(error)}


def job_event(*, action: str, client_ip: str | None, error: BaseException | None = None, **details: Any) -> dict[str, Any]:
    """A catalogue job submitted or cancelled (each item's generation has its own record)."""
    return {"event": f"job.{action}", "service_version": __version__, "client_ip": client_ip, **details, **outcome_of(error)}


def studio_event(*, action: str, client_ip: str | None, error: BaseException | None = None, **details: Any) -> dict[str, Any]:
    """An audit record of a Studio sign-in or sign-out (the key's id, never the key)."""
    return {"event": f"studio.{action}", "service_version": __version__, "client_ip": client_ip, **details,
            **outcome_of(error)}


def edge_refusal_event(*, route: str, error: AtelierError, client_ip: str | None) -> dict[str, Any]:
    """A request refused before it reached a route (size, media type, malformed or invalid body)."""
    return {
        "event": "refused_at_edge",
        "route": route,
        "service_version": __version__,
        "client_ip": client_ip,
        "field": error.field,
        **outcome_of(error),
    }


def asset_event(*, action: str, client_ip: str | None, error: BaseException | None = None, **details: Any) -> dict[str, Any]:
    """An input image added (uploaded or fetched from a URL) or read: its sha256, never its bytes."""
    return {"event": f"asset.{action}", "service_version": __version__, "client_ip": client_ip, **details,
            **outcome_of(error)}


def licence_event(*, action: str, client_ip: str | None, error: BaseException | None = None, **details: Any) -> dict[str, Any]:
    """A licence requested, decided (with the signed licence and its hash), ended, or a signing
    key registered: the person's decisions about their likeness, on the record."""
    return {"event": f"licence.{action}", "service_version": __version__, "client_ip": client_ip, **details,
            **outcome_of(error)}
