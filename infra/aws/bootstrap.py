"""Create and configure Atelier's four S3 buckets, idempotently; render the IAM policy documents.

Owns: the bucket names (`<prefix>-adapters`, `-engines`, `-outputs`, `-audit`), the plan (one
`Step` per boto3 call that would bring a bucket to its wanted state, each with a one-line why),
applying it (every step first reads the current state and is skipped when it already matches;
after a change the state is read back and checked), and rendering the policy documents in
`policies/` for a prefix (`render_policy`).

Wanted state, per bucket: it exists and is ours; default encryption (SSE-S3 AES256, or SSE-KMS
with `--kms-key-arn`); all four Public Access Block settings true. The audit bucket also has
versioning Enabled and Object Lock with a default COMPLIANCE retention of `--audit-retention-days`
(the shipper locks every object it puts for ATELIER_AUDIT_RETENTION_DAYS days anyway; the default
retention is the backstop). The outputs bucket has a lifecycle rule expiring objects after
`--outputs-expiry-days` days (other lifecycle rules already on the bucket are kept).

Must never: change anything under `--dry-run` (no client is even created); delete a bucket, an
object or a lifecycle rule it did not write; weaken a setting; create the audit bucket without
Object Lock or carry on with an existing audit bucket that lacks it (Object Lock is chosen when
a bucket is created: stop with a clear error instead); print credentials (failures are reported
by S3 error code and HTTP status only). Credentials come from the standard AWS chain.

An S3-compatible server (`--endpoint-url`) may not implement every bucket API (SeaweedFS has no
Public Access Block): such a step is reported "unsupported by this endpoint" and the rest goes
on. Against AWS itself (no `--endpoint-url`) the same answer is a failure.

Usage: python infra/aws/bootstrap.py --prefix acme-atelier --region eu-west-1 --dry-run
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

POLICY_DIR = Path(__file__).resolve().parent / "policies"
POLICY_NAMES = ("atelier-service", "atelier-builds")
PLACEHOLDER = "${prefix}"

ROLES = ("adapters", "engines", "outputs", "audit")
DEFAULT_OUTPUTS_EXPIRY_DAYS = 30
DEFAULT_AUDIT_RETENTION_DAYS = 2555  # ATELIER_AUDIT_RETENTION_DAYS's default (service/config.py)
MAX_RETENTION_DAYS = 36500  # S3's limit on an Object Lock retention period (100 years)
LOCK_MODE = "COMPLIANCE"
LIFECYCLE_RULE_ID = "atelier-outputs-expiry"
DEFAULT_REGION = "us-east-1"

# The longest suffix is "-adapters" (9): bucket names are at most 63 characters.
PREFIX_RE = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,52}[a-z0-9])?$")
KMS_ARN_RE = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:(?:key|alias)/[A-Za-z0-9/_-]+$")

# Step actions, in the order they are applied to a bucket.
CREATE = "create-bucket"
PUBLIC_ACCESS = "block-public-access"
ENCRYPTION = "default-encryption"
VERSIONING = "versioning"
OBJECT_LOCK = "object-lock"
LIFECYCLE = "lifecycle-expiry"

# Outcomes.
APPLIED = "applied"
IN_PLACE = "already in place"
UNSUPPORTED = "unsupported by this endpoint"

# Answers meaning "this server does not implement that API" (not "you may not" or "not found").
UNSUPPORTED_CODES = {"NotImplemented", "NotImplementedError", "UnsupportedOperation"}
NOT_FOUND_CODES = {
    PUBLIC_ACCESS: {"NoSuchPublicAccessBlockConfiguration"},
    ENCRYPTION: {"ServerSideEncryptionConfigurationNotFoundError"},
    OBJECT_LOCK: {"ObjectLockConfigurationNotFoundError"},
    LIFECYCLE: {"NoSuchLifecycleConfiguration"},
}


class BootstrapError(Exception):
    """A step cannot be done or checked; the message names the bucket and the S3 error code only."""


@dataclass(frozen=True)
class Config:
    prefix: str
    region: str = DEFAULT_REGION
    endpoint_url: str | None = None
    outputs_expiry_days: int = DEFAULT_OUTPUTS_EXPIRY_DAYS
    audit_retention_days: int = DEFAULT_AUDIT_RETENTION_DAYS
    kms_key_arn: str | None = None

    def __post_init__(self):
        if not isinstance(self.prefix, str) or not PREFIX_RE.match(self.prefix) or "--" in self.prefix \
                or self.prefix.startswith(("xn--", "sthree-")):
            raise BootstrapError(
                f"--prefix must be 1-54 characters of lowercase letters, digits and single hyphens, "
                f"starting and ending with a letter or digit (it begins every bucket name), got {self.prefix!r}")
        if not isinstance(self.outputs_expiry_days, int) or self.outputs_expiry_days < 1:
            raise BootstrapError(f"--outputs-expiry-days must be a whole number of days >= 1, "
                                 f"got {self.outputs_expiry_days!r}")
        if not isinstance(self.audit_retention_days, int) or not 1 <= self.audit_retention_days <= MAX_RETENTION_DAYS:
            raise BootstrapError(f"--audit-retention-days must be a whole number of days from 1 to "
                                 f"{MAX_RETENTION_DAYS}, got {self.audit_retention_days!r}")
        if self.kms_key_arn is not None and not KMS_ARN_RE.match(self.kms_key_arn):
            raise BootstrapError(f"--kms-key-arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), "
                                 f"got {self.kms_key_arn!r}")
        if not self.region or not re.match(r"^[a-z0-9-]+$", self.region):
            raise BootstrapError(f"--region must be a region name like eu-west-1, got {self.region!r}")

    def bucket(self, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"unknown bucket role {role!r}")
        return f"{self.prefix}-{role}"

    @property
    def buckets(self) -> dict[str, str]:
        return {role: self.bucket(role) for role in ROLES}


@dataclass(frozen=True)
class Step:
    bucket: str
    action: str
    call: str  # the boto3 S3 client method
    args: dict = field(hash=False)  # its keyword arguments, exactly as sent (lifecycle: merged at apply)
    why: str

    def describe(self) -> str:
        return f"{self.call}({json.dumps(self.args, sort_keys=True)})"


@dataclass(frozen=True)
class Outcome:
    step: Step
    status: str  # APPLIED, IN_PLACE or UNSUPPORTED
    detail: str = ""


# -- the plan --------------------------------------------------------------------------------
WHY_BUCKET = {
    "adapters": "holds each twin's LoRA adapter file (service/twins/s3_store.py): read, written, deleted on revocation",
    "engines": "holds compiled engines and ONNX exports that builds upload and servers download",
    "outputs": "receives job images and sidecars (service/jobs/delivery.py), read through presigned GETs",
    "audit": "receives sealed audit segments under COMPLIANCE lock (service/audit/shipper.py); "
             "Object Lock can only be turned on when a bucket is created",
}


def _encryption_args(config: Config, bucket: str) -> dict:
    if config.kms_key_arn:
        default = {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": config.kms_key_arn}
        bucket_key = True  # fewer KMS requests (and costs) per object
    else:
        default = {"SSEAlgorithm": "AES256"}
        bucket_key = False
    return {"Bucket": bucket, "ServerSideEncryptionConfiguration": {
        "Rules": [{"ApplyServerSideEncryptionByDefault": default, "BucketKeyEnabled": bucket_key}]}}


def _lifecycle_rule(config: Config) -> dict:
    return {"ID": LIFECYCLE_RULE_ID, "Status": "Enabled", "Filter": {"Prefix": ""},
            "Expiration": {"Days": config.outputs_expiry_days}}


def plan(config: Config) -> list[Step]:
    """Every call that brings the four buckets to their wanted state, in order. Makes no call."""
    steps: list[Step] = []
    for role in ROLES:
        bucket = config.bucket(role)
        create = {"Bucket": bucket}
        if config.region != DEFAULT_REGION:
            create["CreateBucketConfiguration"] = {"LocationConstraint": config.region}
        if role == "audit":
            create["ObjectLockEnabledForBucket"] = True
        steps.append(Step(bucket, CREATE, "create_bucket", create, WHY_BUCKET[role]))
        steps.append(Step(bucket, PUBLIC_ACCESS, "put_public_access_block", {
            "Bucket": bucket, "PublicAccessBlockConfiguration": {
                "BlockPublicAcls": True, "IgnorePublicAcls": True,
                "BlockPublicPolicy": True, "RestrictPublicBuckets": True}},
            "nothing in Atelier is public: outputs are shared through presigned URLs only"))
        steps.append(Step(bucket, ENCRYPTION, "put_bucket_encryption", _encryption_args(config, bucket),
                          "objects are encrypted at rest by default ("
                          + ("SSE-KMS with the given key" if config.kms_key_arn else "SSE-S3, AES256") + ")"))
        if role == "audit":
            steps.append(Step(bucket, VERSIONING, "put_bucket_versioning", {
                "Bucket": bucket, "VersioningConfiguration": {"Status": "Enabled"}},
                "Object Lock protects object versions; the shipper's check_bucket requires versioning Enabled"))
            steps.append(Step(bucket, OBJECT_LOCK, "put_object_lock_configuration", {
                "Bucket": bucket, "ObjectLockConfiguration": {
                    "ObjectLockEnabled": "Enabled",
                    "Rule": {"DefaultRetention": {"Mode": LOCK_MODE, "Days": config.audit_retention_days}}}},
                f"no one, root included, can delete or overwrite an audit version for "
                f"{config.audit_retention_days} days (the default for objects put without their own retention)"))
        if role == "outputs":
            steps.append(Step(bucket, LIFECYCLE, "put_bucket_lifecycle_configuration", {
                "Bucket": bucket, "LifecycleConfiguration": {"Rules": [_lifecycle_rule(config)]}},
                f"generated images expire after {config.outputs_expiry_days} days "
                f"(other lifecycle rules on the bucket are kept)"))
    return steps


# -- reading state -----------------------------------------------------------------------------
def _code(exc) -> tuple[str, int | None]:
    return (exc.response.get("Error", {}).get("Code") or "unknown",
            exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode"))


def _failure(exc, what: str) -> BootstrapError:
    from botocore.exceptions import ClientError

    if isinstance(exc, ClientError):
        code, status = _code(exc)
        return BootstrapError(f"{what}: S3 error {code} (HTTP {status})")
    return BootstrapError(f"{what}: {type(exc).__name__}")


def _is_unsupported(exc) -> bool:
    code, status = _code(exc)
    return code in UNSUPPORTED_CODES or status == 501


def _bucket_exists(client, bucket: str, owned: set[str] | None) -> bool:
    """True if the bucket exists and is ours; False if it does not exist; raises otherwise."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        client.head_bucket(Bucket=bucket)
    except ClientError as exc:
        code, status = _code(exc)
        if status == 404 or code in ("404", "NoSuchBucket", "NotFound"):
            return False
        if status == 403:
            raise BootstrapError(f"bucket {bucket!r} exists but belongs to another account (or these credentials "
                                 f"may not read it): choose another --prefix") from None
        raise _failure(exc, f"checking bucket {bucket!r}") from None
    except (BotoCoreError, OSError) as exc:
        raise _failure(exc, f"checking bucket {bucket!r}") from None
    if owned is not None and bucket not in owned:
        raise BootstrapError(f"bucket {bucket!r} exists but is not owned by these credentials' account "
                             f"(it is not in ListBuckets): choose another --prefix")
    return True


def _owned_buckets(client) -> set[str] | None:
    """Names of the buckets our account owns; None when ListBuckets is not allowed (then HEAD decides)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return {entry["Name"] for entry in client.list_buckets().get("Buckets") or []}
    except ClientError as exc:
        if _code(exc)[1] == 403:
            return None
        raise _failure(exc, "listing buckets") from None
    except (BotoCoreError, OSError) as exc:
        raise _failure(exc, "listing buckets") from None


def _object_lock_enabled(client, bucket: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        lock = client.get_object_lock_configuration(Bucket=bucket)
    except ClientError as exc:
        if _code(exc)[0] in NOT_FOUND_CODES[OBJECT_LOCK]:
            return False
        raise _failure(exc, f"reading the Object Lock configuration of {bucket!r}") from None
    except (BotoCoreError, OSError) as exc:
        raise _failure(exc, f"reading the Object Lock configuration of {bucket!r}") from None
    return (lock.get("ObjectLockConfiguration") or {}).get("ObjectLockEnabled") == "Enabled"


def _read_state(client, step: Step):
    """(matches, what is there now, extra): raises ClientError for the caller to sort out."""
    from botocore.exceptions import ClientError

    bucket = step.bucket
    try:
        if step.action == PUBLIC_ACCESS:
            now = client.get_public_access_block(Bucket=bucket).get("PublicAccessBlockConfiguration") or {}
            wanted = step.args["PublicAccessBlockConfiguration"]
            return all(now.get(key) is True for key in wanted), json.dumps(now, sort_keys=True), None
        if step.action == ENCRYPTION:
            rules = (client.get_bucket_encryption(Bucket=bucket).get("ServerSideEncryptionConfiguration") or {}
                     ).get("Rules") or []
            wanted = step.args["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
            defaults = [rule.get("ApplyServerSideEncryptionByDefault") or {} for rule in rules]
            matches = any(d.get("SSEAlgorithm") == wanted["SSEAlgorithm"]
                          and d.get("KMSMasterKeyID") == wanted.get("KMSMasterKeyID") for d in defaults)
            return matches, json.dumps(defaults, sort_keys=True), defaults
        if step.action == VERSIONING:
            status = client.get_bucket_versioning(Bucket=bucket).get("Status")
            return status == "Enabled", status or "never enabled", None
        if step.action == OBJECT_LOCK:
            lock = client.get_object_lock_configuration(Bucket=bucket).get("ObjectLockConfiguration") or {}
            wanted = step.args["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
            retention = (lock.get("Rule") or {}).get("DefaultRetention") or {}
            matches = (lock.get("ObjectLockEnabled") == "Enabled" and retention.get("Mode") == wanted["Mode"]
                       and retention.get("Days") == wanted["Days"] and "Years" not in retention)
            return matches, json.dumps(lock, sort_keys=True), retention
        if step.action == LIFECYCLE:
            rules = client.get_bucket_lifecycle_configuration(Bucket=bucket).get("Rules") or []
            wanted = step.args["LifecycleConfiguration"]["Rules"][0]
            ours = [rule for rule in rules if rule.get("ID") == wanted["ID"]]
            others = [rule for rule in rules if rule.get("ID") != wanted["ID"]]
            return any(_same_rule(rule, wanted) for rule in ours), json.dumps(ours, sort_keys=True), others
    except ClientError as exc:
        if _code(exc)[0] in NOT_FOUND_CODES.get(step.action, ()):
            return False, "not set", [] if step.action == LIFECYCLE else None
        raise
    raise ValueError(f"no reader for step action {step.action!r}")


def _refuse_weakening(step: Step, now) -> None:
    """Stop rather than shorten the audit bucket's default retention or drop SSE-KMS for AES256."""
    if step.action == OBJECT_LOCK and now:
        wanted = step.args["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]["Days"]
        days = now.get("Days") or 0
        days = max(days, 365 * (now.get("Years") or 0))  # a year counts as at least 365 days
        if days > wanted:
            have = f"{now['Days']} days" if now.get("Days") else f"{now.get('Years')} years"
            raise BootstrapError(
                f"bucket {step.bucket!r} has a default {now.get('Mode')} retention of {have}, longer than the "
                f"{wanted} days asked: not shortening it. Pass --audit-retention-days {days} "
                f"(and set ATELIER_AUDIT_RETENTION_DAYS to match)")
    if step.action == ENCRYPTION and now:
        wanted = step.args["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
        if wanted["SSEAlgorithm"] == "AES256" and any(d.get("SSEAlgorithm", "").startswith("aws:kms") for d in now):
            raise BootstrapError(f"bucket {step.bucket!r} is encrypted with SSE-KMS by default: not replacing "
                                 f"it with SSE-S3. Pass --kms-key-arn with its key")


def _same_rule(rule: dict, wanted: dict) -> bool:
    prefix = (rule.get("Filter") or {}).get("Prefix", rule.get("Prefix", ""))
    other_filters = set(rule.get("Filter") or {}) - {"Prefix"}
    return (rule.get("Status") == wanted["Status"] and prefix == "" and not other_filters
            and (rule.get("Expiration") or {}).get("Days") == wanted["Expiration"]["Days"])


def _clean_rule(rule: dict) -> dict:
    """A rule read back, in the shape PutBucketLifecycleConfiguration takes (drop read-only noise)."""
    return {key: value for key, value in rule.items() if value not in (None, {}, [])}


# -- applying ----------------------------------------------------------------------------------
def apply(client, steps: list[Step], tolerate_unsupported: bool = False, report=None) -> list[Outcome]:
    """Do every step whose state does not match yet; idempotent.

    First, before changing anything, each bucket in the plan is checked: it must not exist, or
    exist and be ours; an existing audit bucket (a create step with ObjectLockEnabledForBucket)
    must have Object Lock enabled. Then each step reads the current state, skips what matches,
    and otherwise makes its call and reads the state back. With `tolerate_unsupported` (an
    S3-compatible endpoint), an API the server does not implement gives UNSUPPORTED for that step;
    without it (AWS) that is a BootstrapError. `report(outcome)` is called after each step."""
    from botocore.exceptions import BotoCoreError, ClientError

    owned = _owned_buckets(client)
    exists: dict[str, bool] = {}
    for step in steps:
        if step.action != CREATE:
            continue
        exists[step.bucket] = _bucket_exists(client, step.bucket, owned)
        if exists[step.bucket] and step.args.get("ObjectLockEnabledForBucket") \
                and not _object_lock_enabled(client, step.bucket):
            raise BootstrapError(
                f"bucket {step.bucket!r} exists without Object Lock, which S3 lets you choose only when a "
                f"bucket is created; audit segments put there could be deleted. Nothing was changed. Use another "
                f"--prefix (a new audit bucket is created with Object Lock), or move the bucket's objects and "
                f"recreate it with Object Lock")

    outcomes: list[Outcome] = []
    for step in steps:
        try:
            outcome = _apply_create(client, step, exists) if step.action == CREATE \
                else _apply_setting(client, step, tolerate_unsupported)
        except BootstrapError:
            raise
        except (ClientError, BotoCoreError, OSError) as exc:
            raise _failure(exc, f"{step.action} on {step.bucket!r} ({step.call})") from None
        outcomes.append(outcome)
        if report is not None:
            report(outcome)
    return outcomes


def _apply_create(client, step: Step, exists: dict[str, bool]) -> Outcome:
    from botocore.exceptions import ClientError

    if exists.get(step.bucket):
        return Outcome(step, IN_PLACE, "bucket exists and is ours")
    try:
        client.create_bucket(**step.args)
    except ClientError as exc:
        code, _status = _code(exc)
        if code == "BucketAlreadyOwnedByYou":  # created between our check and now
            return Outcome(step, IN_PLACE, "bucket exists and is ours")
        if code == "BucketAlreadyExists":
            raise BootstrapError(f"bucket name {step.bucket!r} is taken by another account: choose another --prefix") from None
        raise _failure(exc, f"creating bucket {step.bucket!r}") from None
    if not _bucket_exists(client, step.bucket, None):
        raise BootstrapError(f"bucket {step.bucket!r} was created but does not answer HEAD")
    if step.args.get("ObjectLockEnabledForBucket") and not _object_lock_enabled(client, step.bucket):
        raise BootstrapError(f"bucket {step.bucket!r} was created with ObjectLockEnabledForBucket but reports "
                             f"Object Lock not enabled: this endpoint cannot hold the audit log")
    exists[step.bucket] = True
    return Outcome(step, APPLIED, "created")


def _apply_setting(client, step: Step, tolerate_unsupported: bool) -> Outcome:
    from botocore.exceptions import ClientError

    readable = True
    others: list | None = None
    try:
        matches, current, others = _read_state(client, step)
    except ClientError as exc:
        if not _is_unsupported(exc):
            raise
        readable, matches, current = False, False, "unreadable"
    if matches:
        return Outcome(step, IN_PLACE, current)
    _refuse_weakening(step, others)

    args = step.args
    if step.action == LIFECYCLE and others:
        # PutBucketLifecycleConfiguration replaces every rule: keep the ones that are not ours.
        args = {**args, "LifecycleConfiguration": {
            "Rules": [_clean_rule(rule) for rule in others] + args["LifecycleConfiguration"]["Rules"]}}
    try:
        getattr(client, step.call)(**args)
    except ClientError as exc:
        if _is_unsupported(exc):
            code, status = _code(exc)
            if tolerate_unsupported:
                return Outcome(step, UNSUPPORTED, f"S3 error {code} (HTTP {status})")
            raise BootstrapError(f"{step.action} on {step.bucket!r}: S3 answered {code} (HTTP {status}) to "
                                 f"{step.call}; against AWS this is a failure, not a missing feature") from None
        if step.action == OBJECT_LOCK and _code(exc)[0] == "InvalidBucketState":
            raise BootstrapError(f"bucket {step.bucket!r} refuses an Object Lock configuration (InvalidBucketState): "
                                 f"it was not created with Object Lock") from None
        raise
    if not readable:
        return Outcome(step, APPLIED, "this endpoint cannot read the setting back")
    matches, current, _ = _read_state(client, step)
    if not matches:
        raise BootstrapError(f"{step.action} on {step.bucket!r} was applied but reads back as {current}")
    extra = f" (kept {len(others)} other lifecycle rule(s))" if step.action == LIFECYCLE and others else ""
    return Outcome(step, APPLIED, current + extra)


# -- policies ----------------------------------------------------------------------------------
def _substitute(value, prefix: str):
    if isinstance(value, str):
        return value.replace(PLACEHOLDER, prefix)
    if isinstance(value, list):
        return [_substitute(item, prefix) for item in value]
    if isinstance(value, dict):
        return {key: _substitute(item, prefix) for key, item in value.items()}
    return value


def render_policy(name: str, prefix: str, kms_key_arn: str | None = None) -> dict:
    """The policy document `policies/<name>.json` with `${prefix}` replaced; with a KMS key (the
    buckets' default encryption), one more statement lets the role use that key and no other."""
    if name not in POLICY_NAMES:
        raise BootstrapError(f"unknown policy {name!r}; known: {', '.join(POLICY_NAMES)}")
    Config(prefix=prefix, kms_key_arn=kms_key_arn)  # validates both
    document = _substitute(json.loads((POLICY_DIR / f"{name}.json").read_text(encoding="utf-8")), prefix)
    if "${" in json.dumps(document):
        raise BootstrapError(f"policy {name!r} has a placeholder other than {PLACEHOLDER}")
    if kms_key_arn:
        document["Statement"].append({
            "Sid": "UseBucketKmsKey", "Effect": "Allow",
            "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": [kms_key_arn]})
    return document


def write_policies(directory: Path, prefix: str, kms_key_arn: str | None = None) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in POLICY_NAMES:
        path = directory / f"{name}.json"
        path.write_text(json.dumps(render_policy(name, prefix, kms_key_arn), indent=2) + "\n", encoding="utf-8")
        written.append(path)
    return written


# -- command line ------------------------------------------------------------------------------
def make_client(config: Config):
    import boto3
    from botocore.config import Config as BotoConfig

    boto_config = BotoConfig(
        connect_timeout=5, read_timeout=30, retries={"total_max_attempts": 3, "mode": "standard"},
        s3={"addressing_style": "path" if config.endpoint_url else "auto"},
    )
    return boto3.session.Session().client("s3", endpoint_url=config.endpoint_url, region_name=config.region,
                                          config=boto_config)


def _default_retention() -> int:
    raw = os.environ.get("ATELIER_AUDIT_RETENTION_DAYS") or ""
    try:
        return int(raw) if raw else DEFAULT_AUDIT_RETENTION_DAYS
    except ValueError:
        raise BootstrapError(f"ATELIER_AUDIT_RETENTION_DAYS must be a whole number of days, got {raw!r}") from None


def parse_args(argv: list[str] | None):
    parser = argparse.ArgumentParser(
        prog="bootstrap.py", description="Create and configure Atelier's S3 buckets (idempotent). "
        "Run with --dry-run first: it prints every call and changes nothing.")
    parser.add_argument("--prefix", required=True, help="bucket name prefix: <prefix>-adapters, -engines, -outputs, -audit")
    parser.add_argument("--region", default=None, help="AWS region (default: ATELIER_S3_REGION, AWS_REGION, "
                        f"AWS_DEFAULT_REGION, else {DEFAULT_REGION})")
    parser.add_argument("--endpoint-url", default=None, help="an S3-compatible server instead of AWS; APIs it "
                        "does not implement are reported, not fatal")
    parser.add_argument("--outputs-expiry-days", type=int, default=DEFAULT_OUTPUTS_EXPIRY_DAYS,
                        help=f"days before job outputs expire (default {DEFAULT_OUTPUTS_EXPIRY_DAYS})")
    parser.add_argument("--audit-retention-days", type=int, default=None,
                        help="default COMPLIANCE retention of the audit bucket in days; must equal the service's "
                        f"ATELIER_AUDIT_RETENTION_DAYS (default: that variable, else {DEFAULT_AUDIT_RETENTION_DAYS})")
    parser.add_argument("--kms-key-arn", default=None, help="default encryption with this KMS key (SSE-KMS) "
                        "instead of SSE-S3 (AES256); the rendered policies then allow the key")
    parser.add_argument("--policies-out", type=Path, default=None, help="write the rendered IAM policy documents "
                        "for this prefix into this directory (no AWS call)")
    parser.add_argument("--dry-run", action="store_true", help="print the plan; make no AWS call at all")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None, out=None) -> int:
    out = out or sys.stdout
    args = parse_args(argv)
    try:
        region = (args.region or os.environ.get("ATELIER_S3_REGION") or os.environ.get("AWS_REGION")
                  or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION)
        retention = args.audit_retention_days if args.audit_retention_days is not None else _default_retention()
        config = Config(prefix=args.prefix, region=region, endpoint_url=args.endpoint_url,
                        outputs_expiry_days=args.outputs_expiry_days, audit_retention_days=retention,
                        kms_key_arn=args.kms_key_arn)
        steps = plan(config)
        where = args.endpoint_url or "AWS"
        mode = "dry run: no call is made, nothing changes" if args.dry_run else "applying"
        print(f"Plan for prefix {config.prefix!r}, region {config.region}, at {where} ({mode}):", file=out)
        for number, step in enumerate(steps, 1):
            print(f"  {number:2d}. {step.bucket} {step.action}: {step.describe()}", file=out)
            print(f"      why: {step.why}", file=out)
        if args.policies_out is not None:
            for path in write_policies(args.policies_out, config.prefix, config.kms_key_arn):
                print(f"policy written: {path}", file=out)
        if args.dry_run:
            print(f"{len(steps)} steps planned; dry run, nothing was changed.", file=out)
            _print_settings(config, out)
            return 0
        numbers = {id(step): number for number, step in enumerate(steps, 1)}

        def report(outcome: Outcome) -> None:
            detail = f" ({outcome.detail})" if outcome.status == UNSUPPORTED and outcome.detail else ""
            print(f"  {numbers[id(outcome.step)]:2d}. {outcome.step.bucket} {outcome.step.action}: "
                  f"{outcome.status}{detail}", file=out)

        print("Result:", file=out)
        outcomes = apply(make_client(config), steps, tolerate_unsupported=bool(config.endpoint_url), report=report)
        counts = {status: sum(o.status == status for o in outcomes) for status in (APPLIED, IN_PLACE, UNSUPPORTED)}
        print(", ".join(f"{count} {status}" for status, count in counts.items()), file=out)
        _print_settings(config, out)
        return 0
    except BootstrapError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _print_settings(config: Config, out) -> None:
    print("Service settings for these buckets:", file=out)
    print(f"  ATELIER_ADAPTER_STORE=s3://{config.bucket('adapters')}", file=out)
    print(f"  ATELIER_AUDIT_S3=s3://{config.bucket('audit')}/<deployment>", file=out)
    print(f"  ATELIER_AUDIT_RETENTION_DAYS={config.audit_retention_days}", file=out)
    print(f"  job output_target: s3://{config.bucket('outputs')}/<brand>", file=out)
    if config.endpoint_url:
        print(f"  ATELIER_S3_ENDPOINT_URL={config.endpoint_url}", file=out)
    print(f"  ATELIER_S3_REGION={config.region}", file=out)
    # Behind an ALB (or any proxy), the gateway must trust it, else every client is one source.
    print("  ATELIER_TRUSTED_PROXIES=127.0.0.1/32,::1/128,<the VPC CIDR of the load balancer and ingress>",
          file=out)


if __name__ == "__main__":
    sys.exit(main())
