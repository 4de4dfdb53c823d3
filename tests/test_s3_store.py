"""The S3 adapter store against a real S3-compatible server (SeaweedFS, see tests/s3server.py)."""

from __future__ import annotations

import hashlib
import socket
import uuid

import pytest
import torch
from safetensors.torch import save

from service.errors import AdapterUnavailable
from service.twins import s3_store
from service.twins.s3_store import S3AdapterStore
from service.twins.store import parse_adapter

UNSAFE_KEYS = ["../x.safetensors", "a/../../b.safetensors", "x.bin", "/abs.safetensors"]


def lora_bytes(seed: int = 0) -> bytes:
    generator = torch.Generator().manual_seed(seed)
    return save({
        "unet.down.0.to_q.lora_A.weight": torch.randn(4, 32, generator=generator),
        "unet.down.0.to_q.lora_B.weight": torch.randn(32, 4, generator=generator),
    })


def object_keys(s3_server, prefix: str) -> list[str]:
    listing = s3_server.client().list_objects_v2(Bucket=s3_server.bucket, Prefix=prefix)
    return sorted(item["Key"] for item in listing.get("Contents", []))


@pytest.fixture()
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture()
def store(s3_server, prefix) -> S3AdapterStore:
    return S3AdapterStore(s3_server.bucket, prefix, client=s3_server.client())


def test_write_then_read_round_trips_under_the_prefix(store, s3_server, prefix):
    data = lora_bytes()
    store.write_bytes("ada/v1.safetensors", data)
    assert store.read_bytes("ada/v1.safetensors") == data
    assert object_keys(s3_server, prefix) == [f"{prefix}/ada/v1.safetensors"]

    store.write_bytes("ada/v1.safetensors", b"replaced")
    assert store.read_bytes("ada/v1.safetensors") == b"replaced"


def test_verified_load_accepts_the_recorded_hash_and_refuses_another(store):
    data = lora_bytes(seed=1)
    store.write_bytes("ada.safetensors", data)
    state_dict = parse_adapter(store.read_bytes("ada.safetensors"), hashlib.sha256(data).hexdigest(), "twin 'ada'")
    assert sorted(state_dict) == ["unet.down.0.to_q.lora_A.weight", "unet.down.0.to_q.lora_B.weight"]
    assert state_dict["unet.down.0.to_q.lora_A.weight"].shape == (4, 32)

    with pytest.raises(AdapterUnavailable, match="does not match its recorded sha256"):
        parse_adapter(store.read_bytes("ada.safetensors"), hashlib.sha256(b"another file").hexdigest(), "twin 'ada'")


def test_a_missing_key_is_adapter_unavailable(store):
    with pytest.raises(AdapterUnavailable) as caught:
        store.read_bytes("nobody/v1.safetensors")
    assert caught.value.message == "adapter file 'nobody/v1.safetensors' is missing from the store"
    assert caught.value.status == 503


def test_unsafe_keys_are_refused_before_any_request(s3_server):
    client = s3_server.client()
    sent: list[str] = []
    client.meta.events.register("before-send.s3", lambda request, **_: sent.append(request.url))
    store = S3AdapterStore(s3_server.bucket, "unsafe", client=client)

    for key in UNSAFE_KEYS:
        for attempt in (lambda: store.read_bytes(key), lambda: store.write_bytes(key, b"x"),
                        lambda: store.delete(key)):
            with pytest.raises(AdapterUnavailable, match="plain segments ending in .safetensors"):
                attempt()
    assert sent == []

    # The hook does see requests: a valid key goes to the server.
    with pytest.raises(AdapterUnavailable, match="missing"):
        store.read_bytes("fine.safetensors")
    assert len(sent) == 1 and sent[0].endswith("/unsafe/fine.safetensors")


def test_stores_with_different_prefixes_do_not_see_each_others_keys(s3_server, prefix):
    client = s3_server.client()
    first = S3AdapterStore(s3_server.bucket, f"{prefix}/a", client=client)
    second = S3AdapterStore(s3_server.bucket, f"{prefix}/b/nested", client=client)
    first.write_bytes("ada.safetensors", b"first")

    with pytest.raises(AdapterUnavailable, match="missing"):
        second.read_bytes("ada.safetensors")
    second.write_bytes("ada.safetensors", b"second")
    assert first.read_bytes("ada.safetensors") == b"first"
    assert second.read_bytes("ada.safetensors") == b"second"

    first.delete("ada.safetensors")
    assert second.read_bytes("ada.safetensors") == b"second"
    assert object_keys(s3_server, prefix) == [f"{prefix}/b/nested/ada.safetensors"]

    # Slashes around and inside the prefix never make an empty path segment.
    sloppy = S3AdapterStore(s3_server.bucket, f"/{prefix}//b/nested/", client=client)
    assert sloppy.object_key("ada.safetensors") == f"{prefix}/b/nested/ada.safetensors"
    assert sloppy.read_bytes("ada.safetensors") == b"second"


def test_delete_removes_the_object_and_tolerates_a_missing_one(store, s3_server, prefix):
    store.write_bytes("ada.safetensors", b"data")
    store.write_bytes("bob.safetensors", b"kept")
    store.delete("ada.safetensors")

    with pytest.raises(AdapterUnavailable, match="missing"):
        store.read_bytes("ada.safetensors")
    assert object_keys(s3_server, prefix) == [f"{prefix}/bob.safetensors"]
    store.delete("ada.safetensors")  # already gone: no error
    assert store.read_bytes("bob.safetensors") == b"kept"


def test_an_object_over_the_size_limit_is_refused(store, s3_server, prefix, monkeypatch):
    s3_server.client().put_object(Bucket=s3_server.bucket, Key=f"{prefix}/big.safetensors", Body=b"x" * 64)
    assert store.read_bytes("big.safetensors") == b"x" * 64

    monkeypatch.setattr(s3_store, "MAX_ADAPTER_BYTES", 16)
    with pytest.raises(AdapterUnavailable, match="larger than 16 bytes"):
        store.read_bytes("big.safetensors")
    with pytest.raises(AdapterUnavailable, match="larger than 16 bytes"):
        store.write_bytes("other.safetensors", b"y" * 17)
    assert object_keys(s3_server, f"{prefix}/other") == []


def test_wrong_credentials_fail_without_echoing_them(s3_server):
    import boto3
    from botocore.config import Config

    wrong_secret = "not-the-secret-" + uuid.uuid4().hex
    client = boto3.session.Session().client(
        "s3", endpoint_url=s3_server.endpoint_url, region_name=s3_server.region,
        aws_access_key_id=s3_server.access_key, aws_secret_access_key=wrong_secret,
        config=Config(retries={"total_max_attempts": 1}, s3={"addressing_style": "path"}),
    )
    store = S3AdapterStore(s3_server.bucket, "creds", endpoint_url=s3_server.endpoint_url, client=client)
    with pytest.raises(AdapterUnavailable) as caught:
        store.read_bytes("ada.safetensors")
    message = caught.value.message
    assert f"s3://{s3_server.bucket}/creds at {s3_server.endpoint_url}" in message
    assert "missing" not in message and "S3 error" in message
    assert wrong_secret not in message and s3_server.access_key not in message


def test_from_url_parses_bucket_and_prefix_and_hides_endpoint_userinfo():
    store = S3AdapterStore.from_url("s3://adapters/prod/twins/", endpoint_url="http://user:pw@127.0.0.1:9000",
                                    region="eu-west-1")
    assert (store.bucket, store.prefix) == ("adapters", "prod/twins")
    assert store.describe() == "s3://adapters/prod/twins at http://127.0.0.1:9000"
    assert store.object_key("ada/v1.safetensors") == "prod/twins/ada/v1.safetensors"

    bare = S3AdapterStore.from_url("s3://adapters")
    assert (bare.bucket, bare.prefix, bare.describe()) == ("adapters", "", "s3://adapters")
    assert bare.object_key("ada.safetensors") == "ada.safetensors"

    for bad in ("http://adapters/x", "s3://", "s3:///prefix"):
        with pytest.raises(ValueError):
            S3AdapterStore.from_url(bad)


@pytest.mark.timeout(30)
def test_a_server_that_never_answers_times_out_as_adapter_unavailable(monkeypatch):
    """A listening socket that never accepts: the connection opens, the response never comes."""
    monkeypatch.setattr(s3_store, "READ_TIMEOUT_S", 0.5)  # read by the store's client config
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ATELIERTESTHUNG")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "hung-secret")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        endpoint = f"http://127.0.0.1:{silent.getsockname()[1]}"
        store = S3AdapterStore.from_url("s3://hung/p", endpoint_url=endpoint, region="us-east-1")
        with pytest.raises(AdapterUnavailable) as caught:
            store.read_bytes("ada.safetensors")
    assert "unreachable (ReadTimeoutError)" in caught.value.message
    assert f"s3://hung/p at {endpoint}" in caught.value.message


@pytest.mark.timeout(60)
def test_a_stopped_server_is_adapter_unavailable_quickly_then_recovers(s3_server, monkeypatch):
    # The store's own client: credentials from the standard AWS chain, its own timeouts and retries.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", s3_server.access_key)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", s3_server.secret_key)
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    store = S3AdapterStore.from_url(f"s3://{s3_server.bucket}/outage", endpoint_url=s3_server.endpoint_url,
                                    region=s3_server.region)
    data = lora_bytes(seed=2)
    store.write_bytes("ada.safetensors", data)

    s3_server.stop()
    try:
        with pytest.raises(AdapterUnavailable) as caught:  # a hang is caught by the timeout mark
            store.read_bytes("ada.safetensors")
        with pytest.raises(AdapterUnavailable, match="unreachable"):
            store.write_bytes("bob.safetensors", data)
    finally:
        s3_server.start()

    assert "unreachable" in caught.value.message and f"s3://{s3_server.bucket}/outage" in caught.value.message
    assert s3_server.secret_key not in caught.value.message
    assert store.read_bytes("ada.safetensors") == data
