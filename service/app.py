"""The BentoML service: routes only. Translates HTTP to engine calls and results back to HTTP.

Owns: the route table, loading the engine once at start-up, readiness, and turning typed
errors into responses (through `service.http_edge`). Must never hold generation logic.
"""

from __future__ import annotations

import base64
import functools
import logging

import bentoml
from PIL.Image import Image
from starlette.responses import Response

from service import __version__
from service.config import get_settings
from service.engine import Engine, GenerationResult
from service.errors import AtelierError
from service.http_edge import HttpEdge, error_response, internal_error_response
from service.logs import configure_logging
from service.schemas import MEDIA_TYPES, GenerateRequest, GenerateResponse, ImageOut, Timings

log = logging.getLogger("atelier.app")


def maps_errors(route):
    """Return typed errors as our JSON error body; log and hide anything unexpected."""

    @functools.wraps(route)
    def wrapper(self, *args, **kwargs):
        try:
            return route(self, *args, **kwargs)
        except AtelierError as exc:
            log.info("request refused", extra={"fields": {"route": route.__name__, "code": exc.code, "status": exc.status}})
            return error_response(exc)
        except Exception:
            log.exception("request failed", extra={"fields": {"route": route.__name__}})
            return internal_error_response()

    return wrapper


def to_response(result: GenerationResult) -> GenerateResponse:
    return GenerateResponse(
        generation_id=result.generation_id,
        twin_id=result.twin_id,
        seed=result.seed,
        images=[
            ImageOut(
                index=img.index,
                format=img.format,
                width=img.width,
                height=img.height,
                seed=img.seed,
                sha256=img.sha256,
                data_base64=base64.b64encode(img.data).decode("ascii"),
            )
            for img in result.images
        ],
        timings_ms=Timings(**result.timings_ms),
    )


@bentoml.service(
    name="atelier",
    traffic={"timeout": 600},
    workers=1,
    threads=8,
    labels={"owner": "atelier", "version": __version__},
)
class Atelier:
    """Digital-twin image generation. Models load once here; every route is one engine call."""

    def __init__(self) -> None:
        settings = get_settings()
        configure_logging(settings.log_level)
        self.engine = Engine.from_settings(settings)
        log.info("ready", extra={"fields": {"base_model": str(settings.base_model), "device": str(self.engine.device)}})

    def __is_ready__(self) -> bool:
        return self.engine.ready

    @bentoml.api(route="/v1/generate")
    @maps_errors
    def generate(self, body: GenerateRequest, /) -> GenerateResponse:
        """Generate images of a twin; returns JSON with base64 images, seeds and timings."""
        result = self._run(body)
        return to_response(result)

    @bentoml.api(route="/v1/generate/image")
    @maps_errors
    def generate_image(self, body: GenerateRequest, /) -> Image:
        """Generate and return the first image's bytes, with its Content-Type."""
        result = self._run(body)
        first = result.images[0]
        return Response(
            content=first.data,
            media_type=MEDIA_TYPES[first.format],
            headers={
                "X-Generation-Id": result.generation_id,
                "X-Seed": str(first.seed),
                "X-Image-Sha256": first.sha256,
                "Content-Disposition": f'inline; filename="{result.generation_id}.{first.format}"',
            },
        )

    def _run(self, body: GenerateRequest) -> GenerationResult:
        result = self.engine.generate(body)
        log.info(
            "generation",
            extra={
                "fields": {
                    "generation_id": result.generation_id,
                    "twin_id": result.twin_id,
                    "size": f"{body.width}x{body.height}",
                    "steps": body.steps,
                    "num_images": body.num_images,
                    "timings_ms": result.timings_ms,
                }
            },
        )
        return result


Atelier.add_asgi_middleware(
    HttpEdge,
    json_routes={"/v1/generate": GenerateRequest, "/v1/generate/image": GenerateRequest},
    max_body_bytes=lambda: get_settings().max_body_bytes,
)
