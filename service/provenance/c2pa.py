"""C2PA Content Credentials: sign generated images and read manifests back (c2pa-python 0.38).

Owns: the manifest Atelier writes into every image, the signing settings, and the mapping of
the library's validation result onto our four states.

The manifest (one claim, no thumbnail):
- `c2pa.actions.v2`: `c2pa.created` with digitalSourceType trainedAlgorithmicMedia and the
  generator as softwareAgent, then `c2pa.watermarked` when the image carries a watermark;
  for an edit, instead, `c2pa.opened` of the source (its one ingredient, `parentOf`, with the
  source's own manifest kept when it has one, and metadata `com.atelier.source`: "generation"
  with `com.atelier.generation_id` for the same twin's generation, or "upload", described as
  not an Atelier generation) and `c2pa.edited` with digitalSourceType
  compositeWithTrainedAlgorithmicMedia;
- `com.atelier.generation`: `{"generation_id"}` (no twin id: the manifest is readable by anyone
  with c2patool, and a twin id names the person; verify finds the twin through the watermark
  index, for the generation's own tenant only);
- `com.atelier.licence`, what licensed the generation, with no personal data: `{"basis":
  "signed", "licence_id", "licence_sha256"}` (a licence the person signed: its id and the
  sha256 of its accepted terms, which anyone holding the signed licence can match) or
  `{"basis": "paper", "consent_id", "consent_version"}` (an operator's paper consent record);
  absent for the base model;
- `cawg.training-mining` (the CAWG training and data mining assertion, v1.1): each of its four
  entries (`cawg.ai_generative_training`, `cawg.ai_inference`, `cawg.ai_training`,
  `cawg.data_mining`) `{"use": "notAllowed"}`. c2pa-python writes it as given (a labelled JSON
  assertion, like our own), so the CAWG label is used rather than C2PA's deprecated
  `c2pa.training-mining`, which readers still recognise (`training_mining_of`);
- `c2pa.soft-binding`: `{"alg": "com.atelier.watermark.v1", "blocks": [{"scope": {}, "value":
  <watermark id>}]}` (the library writes it as given and does not interpret it; the spec's
  optional `pad` bytes are left out because the JSON definition cannot express a CBOR bstr);
- claim_generator_info `{name, version}` (the library appends its own version entry).

States of `read_c2pa` (the library's `validation_state`, passed through):
- "Trusted": intact, and the signing chain ends at one of the given trust anchors;
- "Valid": intact (every hash and the signature check out) but the signer is not on the trust
  list; `reasons` then holds `signingCredential.untrusted` and nothing else;
- "Invalid": a manifest is present but a check failed (`reasons` lists the failure codes, e.g.
  `assertion.dataHash.mismatch` for edited bytes), or the container cannot be parsed at all;
- "Absent": no embedded manifest (also: empty input, a format c2pa does not handle, or only a
  reference to a remote manifest, which is never fetched).
The id fields are what the manifest claims; rely on them only when the state is Valid or Trusted.
So are `digital_source_type` (of the first action that declares one), `training_mining` (the
training-mining assertion's entries summed up: "notAllowed", "allowed" or "constrained" when
they all agree, else "mixed") and `signer` (the signing certificate's subject organization and
common name, as the library reports them in `signature_info`; whether that certificate chains
to a trust anchor is what Trusted says), and `licence` (the licence assertion, only when it has
exactly one of the two forms above with well-formed ids: anything else reads as None).

The audit identifier returned by `C2paSigner.sign` is the lowercase hex SHA-256 of the manifest
store (the JUMBF bytes `Builder.sign` returns, which are exactly the bytes embedded in the file,
e.g. the payload of a PNG's `caBX` chunk).

Thread safety: one Context per process is shared (the library guards it and uses a shared one
itself); each thread gets its own native Signer, so no native signer is ever used by two threads
at once; Builders and Readers are per call. A forked child rebuilds both.

Must never: touch the network (no timestamp authority, no remote manifests, no OCSP), embed a
thumbnail, log or echo key material, or raise from `read_c2pa` on bad input.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import c2pa
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from service.errors import MarkingFailed, ModelLoadError
from service.provenance.xmp import COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA, TRAINED_ALGORITHMIC_MEDIA
SOURCE_INGREDIENT = "source"

log = logging.getLogger("atelier.provenance")

GENERATION_ASSERTION = "com.atelier.generation"
LICENCE_ASSERTION = "com.atelier.licence"
SOFT_BINDING_ASSERTION = "c2pa.soft-binding"
TRAINING_MINING_ASSERTION = "cawg.training-mining"
TRAINING_MINING_LABELS = (TRAINING_MINING_ASSERTION, "c2pa.training-mining")  # CAWG's, then C2PA's deprecated one
TRAINING_MINING_USES = ("ai_generative_training", "ai_inference", "ai_training", "data_mining")
NOT_ALLOWED = "notAllowed"
WATERMARK_ALG = "com.atelier.watermark.v1"
SUPPORTED_MIME_TYPES = ("image/png", "image/jpeg", "image/webp")
STATES = ("Absent", "Invalid", "Valid", "Trusted")

# Offline, always: never fetch a remote manifest (an uploaded file could name any URL) or OCSP.
_OFFLINE = {"remote_manifest_fetch": False, "ocsp_fetch": False}
SIGN_SETTINGS = {
    "version": 1,
    "builder": {"thumbnail": {"enabled": False}},
    # verify_after_sign (the default) re-reads what was just signed: a broken manifest fails
    # here, never in a customer's validator. It costs ~1 ms of the ~10 ms per 1024 px PNG.
    "verify": {**_OFFLINE, "verify_after_sign": True},
}


@dataclass(frozen=True)
class Ingredient:
    """The image an edit started from: its bytes, MIME type and title, and its generation id
    when it is an Atelier generation of the same twin; without one it is written as an
    uploaded photo, not an Atelier generation (`ingredient_definition`)."""

    data: bytes
    mime_type: str
    title: str
    generation_id: str | None = None


SOURCE_METADATA = "com.atelier.source"  # the ingredient's metadata field: "generation" or "upload"


def ingredient_definition(ingredient: Ingredient) -> dict:
    """The ingredient's c2pa JSON: `parentOf`, and whether it is one of Atelier's generations
    (its metadata `com.atelier.source` and description say so either way)."""
    if ingredient.generation_id is not None:
        description = f"An Atelier generation ({ingredient.generation_id}) of the same twin."
        metadata = {SOURCE_METADATA: "generation", "com.atelier.generation_id": ingredient.generation_id}
    else:
        description = "An uploaded photo, not an Atelier generation: Atelier has not verified who it shows."
        metadata = {SOURCE_METADATA: "upload"}
    return {"title": ingredient.title, "relationship": "parentOf", "label": SOURCE_INGREDIENT,
            "description": description, "metadata": metadata}


@dataclass(frozen=True)
class ManifestInfo:
    generation_id: str
    watermark_id: str | None
    generator_name: str
    generator_version: str
    ingredient: Ingredient | None = None
    licence: dict | None = None  # the `com.atelier.licence` assertion's data; None: the base model


@dataclass(frozen=True)
class C2paReading:
    state: str  # "Absent" | "Invalid" | "Valid" | "Trusted"
    reasons: list[str] = field(default_factory=list)  # "code: explanation" of each failure
    generation_id: str | None = None
    watermark_id: str | None = None
    claim_generator: str | None = None  # "name/version" of the first claim_generator_info entry
    digital_source_type: str | None = None  # of the first action that declares one
    training_mining: str | None = None  # "notAllowed", "allowed", "constrained", "mixed" or None
    signer: tuple[str | None, str | None] | None = None  # (organization, common name) of the signing certificate
    licence: dict | None = None  # the licence assertion, when well-formed (`licence_of`)


def training_mining_assertion(use: str = NOT_ALLOWED) -> dict:
    """The CAWG training and data mining assertion with every entry set to `use`."""
    return {"label": TRAINING_MINING_ASSERTION,
            "data": {"entries": {f"cawg.{name}": {"use": use} for name in TRAINING_MINING_USES}}}


def manifest_definition(info: ManifestInfo) -> dict:
    """The manifest definition (c2pa JSON) for one generated image."""
    agent = {"name": info.generator_name, "version": info.generator_version}
    if info.ingredient is None:
        actions = [{"action": "c2pa.created", "digitalSourceType": TRAINED_ALGORITHMIC_MEDIA, "softwareAgent": agent}]
    else:
        actions = [{"action": "c2pa.opened", "parameters": {"ingredientIds": [SOURCE_INGREDIENT]}, "softwareAgent": agent},
                   {"action": "c2pa.edited", "digitalSourceType": COMPOSITE_WITH_TRAINED_ALGORITHMIC_MEDIA,
                    "softwareAgent": agent}]
    assertions: list[dict] = [
        {"label": "c2pa.actions.v2", "data": {"actions": actions}},
        {"label": GENERATION_ASSERTION, "data": {"generation_id": info.generation_id}},
        training_mining_assertion(NOT_ALLOWED),  # no AI training, inference or data mining on this image
    ]
    if info.licence is not None:
        assertions.append({"label": LICENCE_ASSERTION, "data": dict(info.licence)})
    if info.watermark_id is not None:
        actions.append({"action": "c2pa.watermarked", "softwareAgent": agent})
        assertions.append(
            {
                "label": SOFT_BINDING_ASSERTION,
                "data": {"alg": WATERMARK_ALG, "blocks": [{"scope": {}, "value": info.watermark_id}]},
            }
        )
    return {"claim_generator_info": [agent], "assertions": assertions}


def _signing_alg(key_pem: bytes) -> c2pa.C2paSigningAlg:
    """The C2PA algorithm that matches the private key (ES256 for the dev CA's P-256 key)."""
    key = load_pem_private_key(key_pem, password=None)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        by_curve = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}
        name = by_curve.get(key.curve.name)
        if name is None:
            raise ValueError(f"unsupported EC curve {key.curve.name}")
        return c2pa.C2paSigningAlg[name]
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return c2pa.C2paSigningAlg.ED25519
    if isinstance(key, rsa.RSAPrivateKey):
        return c2pa.C2paSigningAlg.PS256
    raise ValueError(f"unsupported key type {type(key).__name__}")


def _check_pair(chain_pem: bytes, key_pem: bytes) -> None:
    """The first certificate of the chain must belong to the private key."""
    leaf = x509.load_pem_x509_certificates(chain_pem)[0]
    key = load_pem_private_key(key_pem, password=None)
    if leaf.public_key() != key.public_key():
        raise ValueError("the chain's first certificate does not match the private key")


class C2paSigner:
    """Signs images with one certificate chain and key; safe to share between threads."""

    def __init__(self, chain_pem: str, key_pem: str):
        try:
            chain_bytes, key_bytes = chain_pem.encode(), key_pem.encode()
            _check_pair(chain_bytes, key_bytes)
            self._alg = _signing_alg(key_bytes)
        except (ValueError, TypeError, IndexError, UnsupportedAlgorithm) as exc:
            # The message names the problem, never the PEM contents.
            raise ModelLoadError(f"C2PA signing material is unusable: {exc}", code="signing_unavailable") from None
        self._chain_pem = chain_pem
        self._key_pem = key_pem
        self._state_lock = threading.Lock()
        self._pid = -1
        self._context: c2pa.Context | None = None
        self._local = threading.local()
        self._signer()  # fail now, at start-up, if the library refuses the material

    @classmethod
    def from_pem_files(cls, chain_path: Path, key_path: Path) -> "C2paSigner":
        try:
            chain_pem = Path(chain_path).read_text()
            key_pem = Path(key_path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or type(exc).__name__
            raise ModelLoadError(f"C2PA signing material cannot be read: {reason}", code="signing_unavailable") from None
        return cls(chain_pem, key_pem)

    def _process_state(self) -> tuple[c2pa.Context, threading.local]:
        pid = os.getpid()
        if self._pid != pid:  # first use, or first use in a forked child: native state is not inherited
            with self._state_lock:
                if self._pid != pid:
                    self._context = c2pa.Context.from_dict(SIGN_SETTINGS)
                    self._local = threading.local()
                    self._pid = pid
        return self._context, self._local

    def _signer(self) -> c2pa.Signer:
        _, local = self._process_state()
        signer = getattr(local, "signer", None)
        if signer is None:
            info = c2pa.C2paSignerInfo(self._alg, self._chain_pem.encode(), self._key_pem.encode(), None)
            try:
                signer = c2pa.Signer.from_info(info)  # ta_url=None: no timestamp authority
            except c2pa.C2paError as exc:
                raise ModelLoadError(f"the C2PA library refused the signing material: {type(exc).__name__}", code="signing_unavailable") from None
            local.signer = signer
        return signer

    def sign(self, data: bytes, mime_type: str, info: ManifestInfo) -> tuple[bytes, str]:
        """Embed a signed manifest; return the signed bytes and the manifest store's SHA-256 (hex)."""
        if mime_type not in SUPPORTED_MIME_TYPES:
            raise MarkingFailed(f"C2PA signing is not set up for {mime_type!r}", code="c2pa_sign_failed")
        context, _ = self._process_state()
        signer = self._signer()
        output = io.BytesIO()
        try:
            builder = c2pa.Builder(manifest_definition(info), context=context)
            if info.ingredient is not None:
                builder.add_ingredient(ingredient_definition(info.ingredient), info.ingredient.mime_type,
                                       io.BytesIO(info.ingredient.data))
            manifest_store = builder.sign(signer, mime_type, io.BytesIO(data), output)
        except c2pa.C2paError as exc:
            raise MarkingFailed(f"C2PA signing failed: {exc}", code="c2pa_sign_failed") from exc
        if not manifest_store:
            raise MarkingFailed("C2PA signing returned no manifest", code="c2pa_sign_failed")
        return output.getvalue(), hashlib.sha256(manifest_store).hexdigest()


# --- reading -------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _reader_context(pid: int, trust_anchors_pem: str | None) -> c2pa.Context:
    """One shared reading Context per process and trust list (a forked child builds its own)."""
    settings: dict = {"version": 1, "verify": dict(_OFFLINE)}
    if trust_anchors_pem:
        # trust_anchors replaces the (empty) default list: "Trusted" means "chains to one of these".
        settings["trust"] = {"trust_anchors": trust_anchors_pem}
    return c2pa.Context.from_dict(settings)


def _assertion(manifest: dict, label: str) -> dict | None:
    for assertion in manifest.get("assertions") or []:
        name = assertion.get("label", "")
        if name == label or name.startswith(label + "__"):
            data = assertion.get("data")
            return data if isinstance(data, dict) else None
    return None


def training_mining_of(manifest: dict) -> str | None:
    """The manifest's training-mining entries summed up (CAWG's label first, then C2PA's)."""
    for label in TRAINING_MINING_LABELS:
        data = _assertion(manifest, label)
        if data is None:
            continue
        entries = data.get("entries")
        entries = entries.values() if isinstance(entries, dict) else ()
        uses = {entry.get("use") for entry in entries if isinstance(entry, dict)}
        if not uses:
            return None
        if len(uses) == 1 and (use := next(iter(uses))) in ("allowed", NOT_ALLOWED, "constrained"):
            return use
        return "mixed"
    return None


_LICENCE_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")
_SHA256 = re.compile(r"[0-9a-f]{64}")


def licence_of(manifest: dict) -> dict | None:
    """The manifest's licence assertion, if it is exactly one of the two forms Atelier writes
    (`{"basis": "signed", "licence_id", "licence_sha256"}` or `{"basis": "paper", "consent_id",
    "consent_version"}`) with well-formed ids; None otherwise (a manifest may say anything)."""
    data = _assertion(manifest, LICENCE_ASSERTION)
    if data is None:
        return None
    if data.get("basis") == "signed" and set(data) == {"basis", "licence_id", "licence_sha256"}:
        ids = data["licence_id"], data["licence_sha256"]
        if all(isinstance(v, str) for v in ids) and _LICENCE_ID.fullmatch(ids[0]) and _SHA256.fullmatch(ids[1]):
            return {"basis": "signed", "licence_id": ids[0], "licence_sha256": ids[1]}
    if data.get("basis") == "paper" and set(data) == {"basis", "consent_id", "consent_version"}:
        ids = data["consent_id"], data["consent_version"]
        if all(type(v) is int and 0 <= v < 2**63 for v in ids):
            return {"basis": "paper", "consent_id": ids[0], "consent_version": ids[1]}
    return None


def digital_source_type_of(manifest: dict) -> str | None:
    """The digital source type of the manifest's first action that declares one."""
    for label in ("c2pa.actions.v2", "c2pa.actions"):
        actions = (_assertion(manifest, label) or {}).get("actions")
        for action in actions if isinstance(actions, list) else []:
            source_type = action.get("digitalSourceType") if isinstance(action, dict) else None
            if isinstance(source_type, str):
                return source_type
    return None


def _signer(manifest: dict) -> tuple[str | None, str | None] | None:
    info = manifest.get("signature_info")
    if not isinstance(info, dict):
        return None
    organization, name = info.get("issuer"), info.get("common_name")
    return (organization if isinstance(organization, str) else None, name if isinstance(name, str) else None)


def _failures(store: dict) -> list[str]:
    results = store.get("validation_results")
    entries: list[dict] = []
    if isinstance(results, dict):
        entries += (results.get("activeManifest") or {}).get("failure") or []
        for delta in results.get("ingredientDeltas") or []:
            entries += ((delta or {}).get("validationDeltas") or {}).get("failure") or []
    else:
        entries += store.get("validation_status") or []
    reasons = []
    for entry in entries:
        code, explanation = entry.get("code", "unknown"), entry.get("explanation")
        reasons.append(f"{code}: {explanation}" if explanation else code)
    return reasons


def _claim_generator(manifest: dict) -> str | None:
    infos = manifest.get("claim_generator_info") or []
    if infos and isinstance(infos[0], dict) and infos[0].get("name"):
        name, version = infos[0]["name"], infos[0].get("version")
        return f"{name}/{version}" if version else name
    return manifest.get("claim_generator")


def _reading_from_store(store: dict) -> C2paReading:
    state = store.get("validation_state")
    reasons = _failures(store)
    if state not in ("Invalid", "Valid", "Trusted"):
        reasons.append(f"unrecognised validation state {state!r}")
        state = "Invalid"
    manifest = (store.get("manifests") or {}).get(store.get("active_manifest") or "") or {}
    generation = _assertion(manifest, GENERATION_ASSERTION) or {}
    binding = _assertion(manifest, SOFT_BINDING_ASSERTION) or {}
    watermark_id = None
    if binding.get("alg") == WATERMARK_ALG and binding.get("blocks"):
        watermark_id = (binding["blocks"][0] or {}).get("value")
    return C2paReading(
        state=state,
        reasons=reasons,
        generation_id=generation.get("generation_id"),
        watermark_id=watermark_id,
        claim_generator=_claim_generator(manifest),
        digital_source_type=digital_source_type_of(manifest),
        training_mining=training_mining_of(manifest),
        signer=_signer(manifest),
        licence=licence_of(manifest),
    )


def read_c2pa(data: bytes, mime_type: str, trust_anchors_pem: str | None = None) -> C2paReading:
    """Read and validate the manifest of `data`. Never raises on bad input: Absent or Invalid.

    `trust_anchors_pem` (PEM roots) decides Trusted vs Valid; without it nothing is Trusted.
    """
    if not data:
        return C2paReading("Absent", ["empty input"])
    try:
        context = _reader_context(os.getpid(), trust_anchors_pem or None)
    except c2pa.C2paError as exc:  # the anchors are configuration, not input: say so loudly
        raise ModelLoadError(f"C2PA trust anchors are unusable: {exc}", code="trust_anchors_invalid") from None
    try:
        reader = c2pa.Reader.try_create(mime_type, io.BytesIO(bytes(data)), None, context)
        if reader is None:
            return C2paReading("Absent")
        with reader:
            store = json.loads(reader.json())
        return _reading_from_store(store)
    except c2pa.C2paError.NotSupported as exc:
        return C2paReading("Absent", [f"unsupported format: {exc}"])
    except c2pa.C2paError as exc:
        if isinstance(exc, c2pa.C2paError.RemoteManifest) or str(exc).startswith("Remote"):
            # Only a reference to a manifest elsewhere: nothing embedded, and we never fetch.
            return C2paReading("Absent", [f"remote manifest not fetched (offline verifier): {exc}"])
        return C2paReading("Invalid", [str(exc) or type(exc).__name__])  # e.g. "Io: failed to fill whole buffer"
    except Exception as exc:  # noqa: BLE001 - a verifier must answer, whatever the bytes do
        log.warning("c2pa read failed unexpectedly", extra={"fields": {"error": type(exc).__name__}})
        return C2paReading("Invalid", [f"unreadable: {type(exc).__name__}"])
