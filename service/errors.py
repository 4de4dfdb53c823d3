"""Typed errors of the service, each with a stable snake_case code.

Owns: the exception classes that every layer raises and the HTTP status each one maps to.
The mapping to an HTTP response body happens once, in `service.gateway.http_edge`. Must never import
bentoml or any other part of `service`.
"""

from __future__ import annotations


class AtelierError(Exception):
    """Base of every error the service reports to a caller."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str, *, field: str | None = None, code: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code

    def response_headers(self) -> dict[str, str]:
        """Extra HTTP headers the error's response carries (`Retry-After` for a 429)."""
        return {}


class InvalidRequest(AtelierError):
    """The request is well-formed JSON but a field is out of bounds or of the wrong type."""

    status = 422
    code = "invalid_field"


class MalformedRequest(AtelierError):
    """The body could not be parsed at all (not JSON, not an object, wrong content type)."""

    status = 400
    code = "malformed_request"


class PayloadTooLarge(AtelierError):
    status = 413
    code = "payload_too_large"


class TwinNotFound(AtelierError):
    status = 404
    code = "twin_not_found"


class AdapterUnavailable(AtelierError):
    """The twin exists but its adapter cannot be used right now (missing, corrupt, hash mismatch)."""

    status = 503
    code = "adapter_unavailable"


class UnsafeWeights(AtelierError):
    """Weights in a pickle-based format, or a path that escapes its root: never loaded."""

    status = 400
    code = "unsafe_weights"


class ModelLoadError(AtelierError):
    """The base model directory is missing or is not a diffusers pipeline."""

    status = 503
    code = "model_unavailable"


class NotReady(AtelierError):
    status = 503
    code = "not_ready"


class Unauthorized(AtelierError):
    """No credentials, or credentials that match nothing."""

    status = 401
    code = "unauthorized"


class Forbidden(AtelierError):
    status = 403
    code = "forbidden"


class EditSourceMismatch(Forbidden):
    """An edit's source is an Atelier generation, but not the named twin's for this tenant."""

    code = "edit_source_mismatch"


class EditUploadNotAllowed(Forbidden):
    """An edit's source is not an Atelier generation, and the tenant may not edit uploaded photos."""

    code = "edit_upload_not_allowed"


class EditSourceUnverifiable(AtelierError):
    """An edit's uploaded source could not be read for a watermark within the verify bounds."""

    status = 422
    code = "edit_source_unverifiable"


class MarkingFailed(AtelierError):
    """An image could not be watermarked or signed: it is never returned unmarked."""

    status = 500
    code = "marking_failed"


class UnreadableImage(AtelierError):
    """An uploaded image cannot be decoded, or declares more pixels than allowed."""

    status = 422
    code = "unreadable_image"


class AdmissionRefused(AtelierError):
    """A render call holds an item without the gateway's valid admission seal: unsigned,
    forged, altered since it was admitted, or expired (service.admission_seal). The renderer
    refuses the whole call before any GPU work."""

    status = 401
    code = "invalid_admission"


class LimitsUnavailable(AtelierError):
    """The shared store that holds the fleet's rate limits cannot be reached: the request is
    refused (503, retry shortly) rather than admitted without a limit (service.tenancy.ratelimit)."""

    status = 503
    code = "limits_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = max(1, retry_after)

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RendererUnavailable(AtelierError):
    """No renderer took the call in time (all busy, starting from zero, or unreachable)."""

    status = 503
    code = "renderer_unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, **kwargs):
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)}


class RemoteError(AtelierError):
    """A typed error the renderer reported for one item, carried back to the caller as-is."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(message, field=field, code=code)
        self.status = status

    def response_headers(self) -> dict[str, str]:
        return {"Retry-After": "5"} if self.status == 503 else {}  # the renderer's "retry later" stays one


def error_body(exc: AtelierError) -> dict:
    """The one error shape on the wire: {"error": {"code", "message", "field"?}}."""
    detail: dict = {"code": exc.code, "message": exc.message}
    if exc.field:
        detail["field"] = exc.field
    return {"error": detail}
