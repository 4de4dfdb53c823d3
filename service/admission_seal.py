"""The gateways' credential for internal calls, and the seal that binds a render item to its admission.

Owns: the one secret that only gateways and renderers hold, and the two things made from it.
- The secret: `ATELIER_INTERNAL_TOKEN`, or the file `ATELIER_INTERNAL_TOKEN_FILE` names (a
  mounted Secret); with neither (a laptop, `make serve`, tests), one generated once into
  `$ATELIER_HOME/keys/internal_token` (mode 0600), which every process of `bentoml serve`
  shares, as the demo's other generated keys live in `$ATELIER_HOME/keys`.
- The bearer credential: every renderer route but the probes needs
  `Authorization: Bearer <token>`, compared in constant time (`accepts`).
- The admission seal: for each item it admitted, the gateway computes HMAC-SHA256, under a key
  derived from the token, over a canonical encoding of the generation id, the tenant, the twin,
  the sha256 of the canonical item (request, edit, seed and licence: every asset id it names
  included) and an expiry. The renderer checks every item of a call (`verify`) before any GPU
  work, so a caller cannot change whose assets are read, which twin renders, what is asked for
  or which licence the manifests name, and an item cannot be replayed once it expired.

Must never log, print, return or put in an error message the token or any key derived from
it, and never import anything but the standard library, `service.config` and
`service.errors`: the gateway and the renderer both import it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from service.config import ConfigError, Settings
from service.errors import AdmissionRefused

log = logging.getLogger("atelier.internal_auth")

VERSION = "v1"
TOKEN_FILE = "internal_token"  # under $ATELIER_HOME/keys when nothing is configured
MIN_TOKEN_CHARS = 32
_SEAL_KEY_LABEL = b"atelier admission seal v1"
_SEAL = re.compile(r"v1\.([0-9]{1,12})\.([A-Za-z0-9_-]{43})")  # version, expiry (unix s), mac (b64url)
MAX_SEAL_CHARS = 64


class InternalCredential:
    """The token, its bearer check and the seals derived from it. Holds the secret: never printed."""

    __slots__ = ("_token", "_seal_key")

    def __init__(self, token: str):
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(f"the internal token must be at least {MIN_TOKEN_CHARS} characters")
        if "REPLACE-ME" in token:  # infra/k8s/secret.example.yaml's placeholder is public
            raise ConfigError("the internal token is still the example's placeholder: generate a random one")
        self._token = token.encode("utf-8")
        # A key of its own for seals: a token presented as a bearer is never itself a MAC key.
        self._seal_key = hmac.new(self._token, _SEAL_KEY_LABEL, hashlib.sha256).digest()

    def __repr__(self) -> str:
        return "InternalCredential(<secret>)"

    @classmethod
    def from_settings(cls, settings: Settings) -> "InternalCredential":
        """The credential of this deployment (loaded once per process and source)."""
        return _cached(settings)

    # -- the bearer --------------------------------------------------------------------------

    def authorization(self) -> str:
        """The `Authorization` header value a gateway sends on every internal call."""
        return "Bearer " + self._token.decode("utf-8")

    def accepts(self, authorization: str | bytes | None) -> bool:
        """Whether a call's `Authorization` header carries the token (constant time)."""
        if not authorization:
            return False
        raw = authorization if isinstance(authorization, bytes) else authorization.encode("utf-8", "replace")
        scheme, _, presented = raw.partition(b" ")
        if scheme.lower() != b"bearer":
            return False
        return hmac.compare_digest(presented.strip(), self._token)

    # -- the admission seal ------------------------------------------------------------------

    def seal(self, item: Any, *, ttl_s: float, now: float | None = None) -> str:
        """The seal of a render item (a `service.rendering.RenderItem`), valid `ttl_s` seconds."""
        expires = int((time.time() if now is None else now) + ttl_s)
        return f"{VERSION}.{expires}.{self._mac(item, expires)}"

    def sealed(self, item: Any, *, ttl_s: float, now: float | None = None) -> Any:
        """A copy of `item` carrying its seal."""
        return item.model_copy(update={"seal": self.seal(item, ttl_s=ttl_s, now=now)})

    def verify(self, item: Any, *, now: float | None = None) -> None:
        """Raise AdmissionRefused unless `item` carries this deployment's seal over exactly
        its content, and the seal has not expired."""
        seal = getattr(item, "seal", None)
        if not seal:
            raise AdmissionRefused(f"render item {item.generation_id} carries no admission seal", field="seal")
        match = _SEAL.fullmatch(seal) if len(seal) <= MAX_SEAL_CHARS else None
        if match is None:
            raise AdmissionRefused(f"render item {item.generation_id} has a malformed admission seal", field="seal")
        expires = int(match.group(1))
        if not hmac.compare_digest(match.group(2), self._mac(item, expires)):
            raise AdmissionRefused(f"render item {item.generation_id}'s admission seal does not match it "
                                   "(forged, or the item was altered after admission)", field="seal")
        if (time.time() if now is None else now) >= expires:
            raise AdmissionRefused(f"render item {item.generation_id}'s admission seal has expired", field="seal")

    def verify_all(self, items, *, now: float | None = None) -> None:
        """`verify` every item: one bad item refuses the whole call."""
        now = time.time() if now is None else now
        for item in items:
            self.verify(item, now=now)

    def _mac(self, item: Any, expires: int) -> str:
        request = item.request
        message = json.dumps(["atelier-admission", VERSION, item.generation_id, item.tenant_id,
                              request.twin_id, request_digest(item), expires], separators=(",", ":"))
        mac = hmac.new(self._seal_key, message.encode("utf-8"), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode("ascii")


def request_digest(item: Any) -> str:
    """sha256 of the item's canonical JSON, without its seal: the request (prompt, twin, size,
    garments and pose with their asset ids, ...), the edit (source and mask asset ids, the
    source generation), the seed and the licence its manifests will name (left out of the
    encoding when there is none, the base model's case, so such an item digests as it did
    before licences). Both sides dump the same pydantic models, so the gateway's item and the
    renderer's parsed copy of it encode to the same bytes."""
    fields = {"seed", "request", "edit"} | ({"licence"} if getattr(item, "licence", None) is not None else set())
    body = item.model_dump(mode="json", include=fields)
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
    return hashlib.sha256(canonical.encode("ascii")).hexdigest()


# -- where the token comes from ------------------------------------------------------------------

_lock = threading.Lock()
_loaded: dict[tuple, InternalCredential] = {}


def _cached(settings: Settings) -> InternalCredential:
    source = (settings.internal_token, settings.internal_token_file, settings.home)
    with _lock:
        credential = _loaded.get(source)
        if credential is None:
            credential = _loaded[source] = InternalCredential(load_token(settings))
        return credential


def load_token(settings: Settings) -> str:
    """The configured token, the mounted file's, or the generated one under `home/keys`."""
    if settings.internal_token:
        return settings.internal_token
    if settings.internal_token_file is not None:
        path = settings.internal_token_file
        try:
            token = path.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(f"ATELIER_INTERNAL_TOKEN_FILE cannot be read ({path}: {exc.strerror})") from None
        if len(token) < MIN_TOKEN_CHARS:
            raise ConfigError(f"ATELIER_INTERNAL_TOKEN_FILE ({path}) must hold at least {MIN_TOKEN_CHARS} characters")
        return token
    return generated_token(settings.home / "keys" / TOKEN_FILE)


def generated_token(path: Path) -> str:
    """The token in `path`, created once (mode 0600) if absent. Processes that start together
    (`bentoml serve`'s gateway and renderer workers) agree: each writes a candidate to a file of
    its own and links it into place, which only the first one does; the others read the winner."""
    try:
        token = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        token = ""
    if token:
        return token
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")  # mode 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(secrets.token_urlsafe(32) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        try:
            os.link(temp, path)  # fails if another process got there first
            log.warning("generated an internal token for gateway-renderer calls; set ATELIER_INTERNAL_TOKEN "
                        "or ATELIER_INTERNAL_TOKEN_FILE where the services do not share ATELIER_HOME",
                        extra={"fields": {"path": str(path)}})
        except FileExistsError:
            pass
    finally:
        os.unlink(temp)
    token = path.read_text(encoding="utf-8").strip()
    if len(token) < MIN_TOKEN_CHARS:
        raise ConfigError(f"{path} holds no usable internal token; delete it to generate a new one")
    return token
