"""infra/aws: the IAM policy documents (least privilege, derived from the S3 calls in the code)
and bootstrap.py (plan, --dry-run, idempotent apply), end to end against SeaweedFS (tests/s3server.py)."""

from __future__ import annotations

import importlib.util
import io
import json
import os
import re
import subprocess
import sys
import uuid
from datetime import datetime, timedelta, timezone
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOTSTRAP = ROOT / "infra" / "aws" / "bootstrap.py"
POLICY_DIR = ROOT / "infra" / "aws" / "policies"
PREFIX = "acme-atelier"
KMS_ARN = "arn:aws:kms:eu-west-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def _load_bootstrap():
    spec = importlib.util.spec_from_file_location("atelier_infra_aws_bootstrap", BOOTSTRAP)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


bootstrap = _load_bootstrap()


# -- policies: static checks -------------------------------------------------------------------
# Every S3 action a policy may name, and whether it applies to the bucket ARN or to its objects.
BUCKET_ACTIONS = {"s3:ListBucket", "s3:GetBucketVersioning", "s3:GetBucketObjectLockConfiguration"}
OBJECT_ACTIONS = {"s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:DeleteObject",
                  "s3:PutObjectRetention", "s3:GetObjectRetention", "s3:AbortMultipartUpload"}
KMS_ACTIONS = {"kms:GenerateDataKey", "kms:Decrypt"}


def _buckets(prefix: str = PREFIX) -> dict[str, str]:
    return {role: f"{prefix}-{role}" for role in ("adapters", "engines", "outputs", "audit")}


def _statements(document: dict) -> list[dict]:
    return document["Statement"] if isinstance(document["Statement"], list) else [document["Statement"]]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_policy_files_are_json_templates_of_the_prefix():
    files = sorted(path.stem for path in POLICY_DIR.glob("*.json"))
    assert files == sorted(bootstrap.POLICY_NAMES) == ["atelier-builds", "atelier-service"]
    for name in files:
        raw = json.loads((POLICY_DIR / f"{name}.json").read_text(encoding="utf-8"))
        assert raw["Version"] == "2012-10-17"
        for statement in _statements(raw):
            for resource in _as_list(statement["Resource"]):
                assert resource.startswith("arn:aws:s3:::${prefix}-"), (name, resource)


@pytest.mark.parametrize("kms", [None, KMS_ARN], ids=["sse-s3", "sse-kms"])
@pytest.mark.parametrize("name", ["atelier-service", "atelier-builds"])
def test_rendered_policy_is_least_privilege(name, kms):
    document = bootstrap.render_policy(name, PREFIX, kms_key_arn=kms)
    json.loads(json.dumps(document))  # plain JSON all the way down
    assert document["Version"] == "2012-10-17"
    assert "${" not in json.dumps(document)
    buckets = _buckets().values()
    bucket_arns = {f"arn:aws:s3:::{bucket}" for bucket in buckets}
    object_arns = {f"arn:aws:s3:::{bucket}/*" for bucket in buckets}
    sids = [statement.get("Sid") for statement in _statements(document)]
    assert len(set(sids)) == len(sids) and all(sids), sids
    saw_kms = False
    for statement in _statements(document):
        assert statement["Effect"] == "Allow"
        assert not {"NotAction", "NotResource", "Principal", "NotPrincipal"} & set(statement), statement
        actions, resources = _as_list(statement["Action"]), _as_list(statement["Resource"])
        assert actions and resources
        for action in actions:
            assert action not in ("*", "s3:*") and "*" not in action and "?" not in action, action
        for resource in resources:
            assert resource != "*" and resource.count("*") <= 1, resource
        if any(action.startswith("kms:") for action in actions):
            saw_kms = True
            assert set(actions) <= KMS_ACTIONS and resources == [kms], statement
            continue
        for action in actions:
            assert action in BUCKET_ACTIONS | OBJECT_ACTIONS, f"unknown action {action}: classify it first"
            allowed = bucket_arns if action in BUCKET_ACTIONS else object_arns
            assert set(resources) <= allowed, (action, resources)
    assert saw_kms == bool(kms)


def test_builds_role_touches_only_the_engines_bucket_and_service_never_deletes_audit():
    builds = bootstrap.render_policy("atelier-builds", PREFIX)
    resources = {r for s in _statements(builds) for r in _as_list(s["Resource"])}
    assert resources == {f"arn:aws:s3:::{PREFIX}-engines", f"arn:aws:s3:::{PREFIX}-engines/*"}
    service = bootstrap.render_policy("atelier-service", PREFIX)
    for action in ("s3:DeleteObject", "s3:DeleteObjectVersion", "s3:BypassGovernanceRetention",
                   "s3:PutBucketObjectLockConfiguration", "s3:PutObjectLegalHold"):
        assert not _allowed(service, action, f"arn:aws:s3:::{PREFIX}-audit/segments/x.jsonl"), action
    assert not _allowed(service, "s3:PutObject", f"arn:aws:s3:::{PREFIX}-engines/unet.plan")


def test_render_policy_refuses_bad_input():
    with pytest.raises(bootstrap.BootstrapError):
        bootstrap.render_policy("atelier-admin", PREFIX)
    with pytest.raises(bootstrap.BootstrapError):
        bootstrap.render_policy("atelier-service", "Not A Prefix")
    with pytest.raises(bootstrap.BootstrapError):
        bootstrap.render_policy("atelier-service", PREFIX, kms_key_arn="*")


# -- policies: every S3 call in the code is allowed on its bucket --------------------------------
# Which role runs each file's S3 calls, against which bucket.
SOURCES = {
    "service/twins/s3_store.py": ("atelier-service", "adapters"),
    "service/audit/shipper.py": ("atelier-service", "audit"),
    "service/jobs/delivery.py": ("atelier-service", "outputs"),
    "service/engine/artifact_sync.py": ("atelier-builds", "engines"),
}
# boto3 call -> (IAM action, "bucket" | "object") it needs. A call missing here fails the test.
CALL_ACTIONS = {
    "get_object": [("s3:GetObject", "object")],
    "head_object": [("s3:GetObject", "object")],
    "download_file": [("s3:GetObject", "object")],
    "download_fileobj": [("s3:GetObject", "object")],
    "put_object": [("s3:PutObject", "object")],
    "create_multipart_upload": [("s3:PutObject", "object")],
    "upload_part": [("s3:PutObject", "object")],
    "complete_multipart_upload": [("s3:PutObject", "object")],
    "abort_multipart_upload": [("s3:AbortMultipartUpload", "object")],
    # boto3's managed transfer uploads big files in parts and aborts them on failure.
    "upload_file": [("s3:PutObject", "object"), ("s3:AbortMultipartUpload", "object")],
    "upload_fileobj": [("s3:PutObject", "object"), ("s3:AbortMultipartUpload", "object")],
    "delete_object": [("s3:DeleteObject", "object")],
    "get_object_retention": [("s3:GetObjectRetention", "object")],
    "put_object_retention": [("s3:PutObjectRetention", "object")],
    "list_objects_v2": [("s3:ListBucket", "bucket")],
    "list_objects": [("s3:ListBucket", "bucket")],
    "head_bucket": [("s3:ListBucket", "bucket")],
    "get_bucket_versioning": [("s3:GetBucketVersioning", "bucket")],
    "get_object_lock_configuration": [("s3:GetBucketObjectLockConfiguration", "bucket")],
    "close": [],
}
# Arguments and reads that need more than the call itself (AWS documents each).
SOURCE_ACTIONS = [
    # PutObject with a retention needs s3:PutObjectRetention as well.
    (re.compile(r"\bObjectLock(?:Mode|RetainUntilDate)\s*="), ("s3:PutObjectRetention", "object")),
    # HEAD/GET of a given version needs s3:GetObjectVersion.
    (re.compile(r"[\"']VersionId[\"']\s*:|\bVersionId\s*="), ("s3:GetObjectVersion", "object")),
    # HEAD reports the lock mode and retain-until date only with s3:GetObjectRetention.
    (re.compile(r"[\"']ObjectLock(?:Mode|RetainUntilDate)[\"']\s*\)"), ("s3:GetObjectRetention", "object")),
    # Without s3:ListBucket a missing key answers 403, not 404: code that handles "missing" needs it.
    (re.compile(r"NoSuchKey"), ("s3:ListBucket", "bucket")),
]
CALL_RE = re.compile(r"\b(?:client|_client|s3|_s3|s3_client)\.([a-z_0-9]+)\(")
NAMED_CALL_RE = re.compile(r"\b(get_paginator|generate_presigned_url)\(\s*(?:#[^\n]*\n\s*)?[\"']([a-z_0-9]+)[\"']")
# Grants that no code in the repository calls yet, each with its reason; everything else must be derived.
EXTRA_GRANTS = {
    # The service serves compiled engines that builds uploaded; a missing one answers 404 with ListBucket.
    ("atelier-service", "s3:GetObject", "engines", "object"),
    ("atelier-service", "s3:ListBucket", "engines", "bucket"),
    # A build looks for an existing artifact before uploading (404, not 403) and lists what it built.
    ("atelier-builds", "s3:ListBucket", "engines", "bucket"),
}


def _allowed(document: dict, action: str, resource: str) -> bool:
    return any(statement["Effect"] == "Allow" and action in _as_list(statement["Action"])
               and any(fnmatchcase(resource, pattern) for pattern in _as_list(statement["Resource"]))
               for statement in _statements(document))


def _calls(source: str) -> list[str]:
    calls = [name for name in CALL_RE.findall(source) if name not in ("get_paginator", "generate_presigned_url")]
    calls += [named for _, named in NAMED_CALL_RE.findall(source)]
    bare = len(re.findall(r"\b(?:get_paginator|generate_presigned_url)\(", source))
    assert bare == len(NAMED_CALL_RE.findall(source)), "a paginator or presigned call with a non-literal name"
    return calls


def _required() -> dict[tuple[str, str], set[tuple[str, str]]]:
    """(policy, bucket role) -> {(action, "bucket"|"object")} from the S3 calls in the sources."""
    required: dict[tuple[str, str], set[tuple[str, str]]] = {}
    for relative, (policy, role) in SOURCES.items():
        path = ROOT / relative
        assert path.is_file(), f"{relative} is gone: update SOURCES"
        source = path.read_text(encoding="utf-8")
        calls = _calls(source)
        assert calls, f"no S3 call found in {relative}: the regex no longer matches the code"
        needs = required.setdefault((policy, role), set())
        for call in calls:
            assert call in CALL_ACTIONS, f"{relative} calls {call}, which has no IAM mapping here: add one"
            needs.update(CALL_ACTIONS[call])
        for pattern, need in SOURCE_ACTIONS:
            if pattern.search(source):
                needs.add(need)
    return required


def test_the_call_scan_finds_what_the_service_does():
    required = _required()
    assert required[("atelier-service", "audit")] >= {
        ("s3:PutObject", "object"), ("s3:PutObjectRetention", "object"), ("s3:GetObjectVersion", "object"),
        ("s3:GetObjectRetention", "object"), ("s3:ListBucket", "bucket"), ("s3:GetBucketVersioning", "bucket"),
        ("s3:GetBucketObjectLockConfiguration", "bucket"), ("s3:GetObject", "object")}
    assert required[("atelier-service", "adapters")] == {
        ("s3:GetObject", "object"), ("s3:PutObject", "object"), ("s3:DeleteObject", "object"),
        ("s3:ListBucket", "bucket")}
    assert required[("atelier-service", "outputs")] == {("s3:PutObject", "object"), ("s3:GetObject", "object")}
    # The scanner sees through a comment between the call and its literal name.
    assert _calls('c.generate_presigned_url(  # x\n    "get_object", Params={})') == ["get_object"]


@pytest.mark.parametrize("prefix", [PREFIX, "other-prefix"])
def test_every_s3_call_in_the_code_is_allowed_on_its_bucket(prefix):
    buckets = _buckets(prefix)
    for (policy, role), needs in _required().items():
        document = bootstrap.render_policy(policy, prefix)
        for action, level in sorted(needs):
            resource = f"arn:aws:s3:::{buckets[role]}" + ("/some/key.bin" if level == "object" else "")
            assert _allowed(document, action, resource), f"{policy} lacks {action} on {resource}"
            # Not by a wildcard that reaches a bucket of another prefix.
            assert not _allowed(document, action, resource.replace(prefix, prefix + "x", 1)), (policy, action)


def test_policies_grant_nothing_the_code_does_not_need():
    required = _required()
    buckets = _buckets()
    for policy in bootstrap.POLICY_NAMES:
        document = bootstrap.render_policy(policy, PREFIX)
        granted = set()
        for statement in _statements(document):
            for action in _as_list(statement["Action"]):
                for resource in _as_list(statement["Resource"]):
                    role = next(r for r, b in buckets.items() if resource in (f"arn:aws:s3:::{b}", f"arn:aws:s3:::{b}/*"))
                    granted.add((action, role, "object" if resource.endswith("/*") else "bucket"))
        needed = {(action, role, level) for (p, role), needs in required.items() if p == policy
                  for action, level in needs}
        extras = {(action, role, level) for p, action, role, level in EXTRA_GRANTS if p == policy}
        assert granted - needed - extras == set(), f"{policy} grants more than the code needs"
        assert needed - granted == set(), f"{policy} lacks what the code needs"


# -- plan and the command line without a server ---------------------------------------------------
def test_plan_covers_every_bucket_setting():
    config = bootstrap.Config(prefix=PREFIX, outputs_expiry_days=7, audit_retention_days=3)
    steps = bootstrap.plan(config)
    by = {(step.bucket, step.action): step for step in steps}
    for bucket in _buckets().values():
        assert (bucket, "create-bucket") in by and (bucket, "block-public-access") in by
        encryption = by[(bucket, "default-encryption")].args["ServerSideEncryptionConfiguration"]["Rules"][0]
        assert encryption["ApplyServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}
        pab = by[(bucket, "block-public-access")].args["PublicAccessBlockConfiguration"]
        assert pab == dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
    audit = f"{PREFIX}-audit"
    assert by[(audit, "create-bucket")].args["ObjectLockEnabledForBucket"] is True
    assert "ObjectLockEnabledForBucket" not in by[(f"{PREFIX}-outputs", "create-bucket")].args
    assert by[(audit, "object-lock")].args["ObjectLockConfiguration"]["Rule"]["DefaultRetention"] == {
        "Mode": "COMPLIANCE", "Days": 3}
    assert by[(audit, "versioning")].args["VersioningConfiguration"] == {"Status": "Enabled"}
    rule = by[(f"{PREFIX}-outputs", "lifecycle-expiry")].args["LifecycleConfiguration"]["Rules"][0]
    assert rule["Expiration"] == {"Days": 7} and rule["Status"] == "Enabled"
    assert {step.action for step in steps if step.bucket != audit} & {"object-lock", "versioning"} == set()
    assert all(step.why and "\n" not in step.why for step in steps)
    assert all(step.args["Bucket"] == step.bucket for step in steps)
    # Another region needs a location constraint; KMS replaces AES256.
    other = bootstrap.plan(bootstrap.Config(prefix=PREFIX, region="eu-west-1", kms_key_arn=KMS_ARN))
    create = next(step for step in other if step.action == "create-bucket")
    assert create.args["CreateBucketConfiguration"] == {"LocationConstraint": "eu-west-1"}
    encryption = next(step for step in other if step.action == "default-encryption")
    assert encryption.args["ServerSideEncryptionConfiguration"]["Rules"][0] == {
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS_ARN},
        "BucketKeyEnabled": True}


@pytest.mark.parametrize("args", [
    ["--prefix", "Bad_Prefix"], ["--prefix", "a" * 55], ["--prefix", "x--y"], ["--prefix=-x"], ["--prefix=x-"],
    ["--prefix", PREFIX, "--audit-retention-days", "0"], ["--prefix", PREFIX, "--outputs-expiry-days", "0"],
    ["--prefix", PREFIX, "--kms-key-arn", "not-an-arn"],
])
def test_bad_arguments_are_refused(args, capsys):
    assert bootstrap.main([*args, "--dry-run"], out=io.StringIO()) == 1
    assert capsys.readouterr().err.startswith("error: ")


def test_audit_retention_follows_the_service_setting(monkeypatch):
    from service.config import Settings

    assert Settings.from_env({}).audit_retention_days == bootstrap.DEFAULT_AUDIT_RETENTION_DAYS
    monkeypatch.setenv("ATELIER_AUDIT_RETENTION_DAYS", "400")
    out = io.StringIO()
    assert bootstrap.main(["--prefix", PREFIX, "--dry-run"], out=out) == 0
    assert '"DefaultRetention": {"Days": 400, "Mode": "COMPLIANCE"}' in out.getvalue()
    assert "ATELIER_AUDIT_RETENTION_DAYS=400" in out.getvalue()
    out = io.StringIO()
    assert bootstrap.main(["--prefix", PREFIX, "--dry-run", "--audit-retention-days", "9"], out=out) == 0
    assert '"Days": 9, "Mode": "COMPLIANCE"' in out.getvalue()


def test_policies_out_writes_the_rendered_documents(tmp_path):
    out = io.StringIO()
    assert bootstrap.main(["--prefix", PREFIX, "--dry-run", "--kms-key-arn", KMS_ARN,
                           "--policies-out", str(tmp_path)], out=out) == 0
    for name in bootstrap.POLICY_NAMES:
        written = json.loads((tmp_path / f"{name}.json").read_text())
        assert written == bootstrap.render_policy(name, PREFIX, kms_key_arn=KMS_ARN)
        assert f"{PREFIX}-engines" in json.dumps(written)


class _StubClient:
    """Answers from a table; anything else is a test failure."""

    def __init__(self, answers: dict):
        self.answers = answers
        self.calls: list[str] = []

    def __getattr__(self, name):
        def call(**kwargs):
            self.calls.append(name)
            answer = self.answers[name]
            if isinstance(answer, Exception):
                raise answer
            return answer
        return call


def _client_error(code: str, status: int, operation: str = "Op"):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "x"}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       operation)


def test_a_bucket_of_another_account_stops_before_any_change():
    client = _StubClient({"list_buckets": {"Buckets": []}, "head_bucket": _client_error("403", 403)})
    steps = bootstrap.plan(bootstrap.Config(prefix=PREFIX))
    with pytest.raises(bootstrap.BootstrapError, match="another account"):
        bootstrap.apply(client, steps)
    assert set(client.calls) == {"list_buckets", "head_bucket"}


def test_sse_kms_is_never_replaced_by_aes256():
    step = next(step for step in bootstrap.plan(bootstrap.Config(prefix=PREFIX)) if step.action == "default-encryption")
    client = _StubClient({"list_buckets": {"Buckets": [{"Name": step.bucket}]}, "get_bucket_encryption": {
        "ServerSideEncryptionConfiguration": {"Rules": [{"ApplyServerSideEncryptionByDefault": {
            "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": KMS_ARN}}]}}})
    with pytest.raises(bootstrap.BootstrapError, match="not replacing it with SSE-S3"):
        bootstrap.apply(client, [step])
    assert "put_bucket_encryption" not in client.calls


# -- against SeaweedFS ---------------------------------------------------------------------------
@pytest.fixture
def s3_env(s3_server, monkeypatch, tmp_path):
    """The standard AWS chain finds the test identity, and nothing else (no profile, no config file)."""
    for name in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
                 "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "ATELIER_AUDIT_RETENTION_DAYS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return s3_server


def _prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


def _bucket_names(client) -> set[str]:
    return {entry["Name"] for entry in client.list_buckets().get("Buckets") or []}


def _cli(s3_server, prefix: str, *extra: str) -> tuple[int, str]:
    out = io.StringIO()
    code = bootstrap.main(["--prefix", prefix, "--endpoint-url", s3_server.endpoint_url,
                           "--region", s3_server.region, *extra], out=out)
    return code, out.getvalue()


def test_dry_run_prints_every_step_and_creates_nothing(s3_env):
    prefix = _prefix()
    client = s3_env.client()
    before = _bucket_names(client)
    env = {**os.environ}
    result = subprocess.run(
        [sys.executable, str(BOOTSTRAP), "--prefix", prefix, "--endpoint-url", s3_env.endpoint_url,
         "--region", s3_env.region, "--outputs-expiry-days", "5", "--audit-retention-days", "4", "--dry-run"],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    steps = bootstrap.plan(bootstrap.Config(prefix=prefix, region=s3_env.region, endpoint_url=s3_env.endpoint_url,
                                            outputs_expiry_days=5, audit_retention_days=4))
    assert len(steps) == 15
    for number, step in enumerate(steps, 1):
        assert f"{number:2d}. {step.bucket} {step.action}: {step.describe()}" in result.stdout
        assert f"why: {step.why}" in result.stdout
    assert "nothing was changed" in result.stdout
    after = _bucket_names(client)
    assert after == before and not any(name.startswith(prefix) for name in after)
    # No call at all: a dead endpoint and no credentials make no difference.
    bare = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    result = subprocess.run(
        [sys.executable, str(BOOTSTRAP), "--prefix", prefix, "--endpoint-url", "http://127.0.0.1:9", "--dry-run"],
        capture_output=True, text=True, timeout=60, env=bare, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("why: ") == 15


def test_apply_end_to_end_then_second_apply_is_a_no_op(s3_env):
    from botocore.exceptions import ClientError

    from service.audit.shipper import AuditShipper

    prefix = _prefix()
    code, output = _cli(s3_env, prefix, "--audit-retention-days", "3", "--outputs-expiry-days", "7")
    assert code == 0, output
    client = s3_env.client()
    buckets = _buckets(prefix)
    assert set(buckets.values()) <= _bucket_names(client)

    audit = buckets["audit"]
    assert client.get_bucket_versioning(Bucket=audit)["Status"] == "Enabled"
    lock = client.get_object_lock_configuration(Bucket=audit)["ObjectLockConfiguration"]
    assert lock["ObjectLockEnabled"] == "Enabled"
    assert lock["Rule"]["DefaultRetention"] == {"Mode": "COMPLIANCE", "Days": 3}
    for role in ("adapters", "engines", "outputs"):
        with pytest.raises(ClientError):  # Object Lock on the audit bucket only
            client.get_object_lock_configuration(Bucket=buckets[role])
    # The service's own check accepts the audit bucket.
    assert AuditShipper(Path("/nonexistent"), audit, "prod", 3, client=client).check_bucket() == []

    # A version put there (default retention applies) cannot be deleted.
    put = client.put_object(Bucket=audit, Key="segments/probe.jsonl", Body=b"{}\n")
    head = client.head_object(Bucket=audit, Key="segments/probe.jsonl", VersionId=put["VersionId"])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    until = head["ObjectLockRetainUntilDate"].astimezone(timezone.utc)
    assert abs(until - (datetime.now(timezone.utc) + timedelta(days=3))) < timedelta(minutes=5)
    with pytest.raises(ClientError) as denied:
        client.delete_object(Bucket=audit, Key="segments/probe.jsonl", VersionId=put["VersionId"])
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert client.get_object(Bucket=audit, Key="segments/probe.jsonl", VersionId=put["VersionId"])["Body"].read() == b"{}\n"

    for bucket in buckets.values():
        rules = client.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256", bucket

    # Every step is reported; what the server lacks is "unsupported", and only that.
    steps = bootstrap.plan(bootstrap.Config(prefix=prefix, region=s3_env.region, endpoint_url=s3_env.endpoint_url,
                                            outputs_expiry_days=7, audit_retention_days=3))
    unsupported = set()
    result = output.split("\nResult:\n", 1)[1]  # after the plan
    for number, step in enumerate(steps, 1):
        line = next(line for line in result.splitlines() if line.startswith(f"  {number:2d}. {step.bucket} {step.action}: "))
        if "unsupported by this endpoint" in line:
            unsupported.add((step.bucket, step.action))
        else:
            assert line.endswith(": applied") or line.endswith(": already in place"), line
    for step in steps:
        if step.action == "block-public-access":
            if (step.bucket, step.action) in unsupported:
                with pytest.raises(ClientError) as missing:
                    client.get_public_access_block(Bucket=step.bucket)
                assert missing.value.response["Error"]["Code"] == "NotImplemented"
            else:
                config = client.get_public_access_block(Bucket=step.bucket)["PublicAccessBlockConfiguration"]
                assert all(config.values()) and len(config) == 4
        if step.action == "lifecycle-expiry":
            if (step.bucket, step.action) in unsupported:
                with pytest.raises(ClientError):
                    client.get_bucket_lifecycle_configuration(Bucket=step.bucket)
            else:
                rules = client.get_bucket_lifecycle_configuration(Bucket=step.bucket)["Rules"]
                ours = [rule for rule in rules if rule["ID"] == "atelier-outputs-expiry"]
                assert ours and ours[0]["Expiration"] == {"Days": 7} and ours[0]["Status"] == "Enabled"
    assert unsupported <= {(step.bucket, "block-public-access") for step in steps} | {
        (buckets["outputs"], "lifecycle-expiry")}

    # Again: nothing to do (the same steps unsupported as before), and the object is still there.
    seen = []
    outcomes = bootstrap.apply(bootstrap.make_client(bootstrap.Config(
        prefix=prefix, region=s3_env.region, endpoint_url=s3_env.endpoint_url)), steps,
        tolerate_unsupported=True, report=seen.append)
    assert seen == outcomes and len(outcomes) == len(steps)
    assert {o.status for o in outcomes} <= {"already in place", "unsupported by this endpoint"}
    assert {(o.step.bucket, o.step.action) for o in outcomes if o.status != "already in place"} == unsupported
    code, output = _cli(s3_env, prefix, "--audit-retention-days", "3", "--outputs-expiry-days", "7")
    assert code == 0 and f"0 applied, {len(steps) - len(unsupported)} already in place, {len(unsupported)} unsupported" in output


def test_outputs_lifecycle_is_updated_and_other_rules_are_kept(s3_env):
    prefix = _prefix()
    client = s3_env.client()
    outputs = f"{prefix}-outputs"
    client.create_bucket(Bucket=outputs)
    client.put_bucket_lifecycle_configuration(Bucket=outputs, LifecycleConfiguration={"Rules": [
        {"ID": "keep-me", "Status": "Enabled", "Filter": {"Prefix": "tmp/"}, "Expiration": {"Days": 1}},
        {"ID": "atelier-outputs-expiry", "Status": "Enabled", "Filter": {"Prefix": ""}, "Expiration": {"Days": 99}},
    ]})
    code, output = _cli(s3_env, prefix, "--outputs-expiry-days", "7", "--audit-retention-days", "2")
    assert code == 0, output
    assert f"{outputs} create-bucket: already in place" in output
    assert f"{outputs} lifecycle-expiry: applied" in output
    rules = {rule["ID"]: rule for rule in client.get_bucket_lifecycle_configuration(Bucket=outputs)["Rules"]}
    assert set(rules) == {"keep-me", "atelier-outputs-expiry"}
    assert rules["keep-me"]["Expiration"] == {"Days": 1} and rules["keep-me"]["Filter"] == {"Prefix": "tmp/"}
    assert rules["atelier-outputs-expiry"]["Expiration"] == {"Days": 7}


def test_existing_audit_bucket_without_object_lock_stops_with_a_clear_error(s3_env, capsys):
    prefix = _prefix()
    client = s3_env.client()
    client.create_bucket(Bucket=f"{prefix}-audit")  # no Object Lock
    code, output = _cli(s3_env, prefix)
    assert code == 1
    error = capsys.readouterr().err
    assert f"bucket '{prefix}-audit' exists without Object Lock" in error and "Nothing was changed" in error
    assert s3_env.secret_key not in error + output
    # Checked before anything else: the other buckets were not created.
    assert {name for name in _bucket_names(client) if name.startswith(prefix)} == {f"{prefix}-audit"}
    with pytest.raises(Exception):
        client.get_bucket_encryption(Bucket=f"{prefix}-audit")


class _Unimplemented:
    """A real client whose chosen APIs answer 501 NotImplemented (like SeaweedFS's Public Access Block)."""

    def __init__(self, client, names: set[str]):
        self._client, self._names = client, names

    def __getattr__(self, name):
        if name in self._names:
            def refuse(**kwargs):
                raise _client_error("NotImplemented", 501, name)
            return refuse
        return getattr(self._client, name)


def test_unimplemented_api_is_reported_only_for_a_custom_endpoint(s3_env):
    prefix = _prefix()
    steps = bootstrap.plan(bootstrap.Config(prefix=prefix, region=s3_env.region, endpoint_url=s3_env.endpoint_url))
    names = {"get_bucket_encryption", "put_bucket_encryption", "get_public_access_block", "put_public_access_block"}
    # AWS (no endpoint): a 501 is a failure, named by step and code.
    with pytest.raises(bootstrap.BootstrapError, match=r"block-public-access .*NotImplemented \(HTTP 501\)"):
        bootstrap.apply(_Unimplemented(s3_env.client(), names), steps, tolerate_unsupported=False)
    outcomes = bootstrap.apply(_Unimplemented(s3_env.client(), names), steps, tolerate_unsupported=True)
    status = {(o.step.bucket, o.step.action): o.status for o in outcomes}
    audit, adapters = f"{prefix}-audit", f"{prefix}-adapters"
    for step in steps:
        if step.action in ("block-public-access", "default-encryption"):
            expected = "unsupported by this endpoint"
        elif step.bucket == adapters and step.action == "create-bucket":
            expected = "already in place"  # the first (AWS) run created it, then stopped at its next step
        elif step.bucket == audit and step.action == "versioning":
            expected = "already in place"  # a bucket created with Object Lock is versioned
        else:
            expected = "applied"
        assert status[(step.bucket, step.action)] == expected, step
    with pytest.raises(Exception):  # it really was not applied
        s3_env.client().get_bucket_encryption(Bucket=f"{prefix}-outputs")


def test_audit_default_retention_is_never_shortened(s3_env, capsys):
    prefix = _prefix()
    client = s3_env.client()
    audit = f"{prefix}-audit"
    assert _cli(s3_env, prefix, "--audit-retention-days", "5")[0] == 0
    code, _output = _cli(s3_env, prefix, "--audit-retention-days", "3")
    assert code == 1
    assert "not shortening it. Pass --audit-retention-days 5" in capsys.readouterr().err
    retention = client.get_object_lock_configuration(Bucket=audit)["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert retention == {"Mode": "COMPLIANCE", "Days": 5}
    code, output = _cli(s3_env, prefix, "--audit-retention-days", "8")  # longer is fine
    assert code == 0 and f"{audit} object-lock: applied" in output
    retention = client.get_object_lock_configuration(Bucket=audit)["ObjectLockConfiguration"]["Rule"]["DefaultRetention"]
    assert retention == {"Mode": "COMPLIANCE", "Days": 8}
