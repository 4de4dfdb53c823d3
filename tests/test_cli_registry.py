"""`atelier` registry commands (tenants, keys, twins, consent) against a temp ATELIER_HOME, no server."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from service.cli import main
from service.config import Settings
from service.registry import open_registry

ENV = ("ATELIER_DB_URL", "ATELIER_DB_MIGRATE", "ATELIER_ADAPTERS_DIR", "ATELIER_ADAPTER_STORE",
       "ATELIER_REGISTRY_POLL_MS")


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("ATELIER_HOME", str(home))
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    return home


def run(capsys, *argv: str) -> tuple[int, dict | None, str]:
    """(exit code, the JSON printed on stdout or None, stderr). Argparse errors exit 2 via SystemExit."""
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if captured.out.strip() else None), captured.err


def registry():
    return open_registry(Settings.from_env().db_url)


def put_twin(twin_id: str, adapter_key: str) -> None:
    reg = registry()
    try:
        sha256 = hashlib.sha256(adapter_key.encode()).hexdigest()  # one adapter per twin (one likeness, one twin)
        reg.put_twin(twin_id, display_name=twin_id.title(), adapter_key=adapter_key, adapter_sha256=sha256, rank=4)
    finally:
        reg.engine.dispose()


def test_tenant_key_lifecycle_never_stores_or_lists_the_token(home, capsys):
    code, out, _ = run(capsys, "tenants", "create", "acme", "--name", "Acme SA")
    assert code == 0 and out["tenant"] == {**out["tenant"], "id": "acme", "name": "Acme SA", "disabled": False}

    code, out, err = run(capsys, "keys", "create", "--tenant", "acme", "--scopes", "generate,verify", "--name", "ci",
                         "--rpm", "30", "--concurrent", "2")
    assert code == 0
    token, key = out["token"], out["key"]
    assert token.startswith(f"atl_{key['key_id']}_")
    assert (key["tenant_id"], key["scopes"], key["requests_per_minute"], key["max_concurrent_jobs"], key["name"]) == (
        "acme", ["generate", "verify"], 30, 2, "ci")
    assert "shown once" in err and token not in err
    secret = token.split("_", 2)[2]

    db_files = [p for p in (home / n for n in ("registry.db", "registry.db-wal", "registry.db-shm")) if p.exists()]
    assert home / "registry.db" in db_files
    for path in db_files:
        raw = path.read_bytes()
        assert token.encode() not in raw and secret.encode() not in raw, path.name

    reg = registry()
    try:
        assert reg.authenticate(token).key_id == key["key_id"]  # the printed token is the real one
    finally:
        reg.engine.dispose()

    code, out, _ = run(capsys, "keys", "list", "--tenant", "acme")
    assert code == 0 and [k["key_id"] for k in out["keys"]] == [key["key_id"]]
    listed = json.dumps(out)
    assert secret not in listed and "hash" not in listed and "salt" not in listed
    assert out["keys"][0]["revoked_at"] is None

    code, out, _ = run(capsys, "keys", "revoke", key["key_id"])
    assert code == 0 and out == {"key_id": key["key_id"], "revoked": True, "already_revoked": False}
    # Revoking again is not an error: exit 0, and it says so (as POST /v1/admin/keys/revoke does).
    code, out, _ = run(capsys, "keys", "revoke", key["key_id"])
    assert code == 0 and out["already_revoked"] is True
    code, out, err = run(capsys, "keys", "revoke", "0123456789ab")
    assert (code, out) == (1, None) and err.startswith("error: key_not_found:")

    code, out, _ = run(capsys, "keys", "list")
    assert out["keys"][0]["revoked_at"] is not None
    reg = registry()
    try:
        assert reg.authenticate(token) is None
    finally:
        reg.engine.dispose()


def test_duplicate_tenant_and_unknown_tenant_exit_1(home, capsys):
    assert run(capsys, "tenants", "create", "acme", "--name", "Acme")[0] == 0
    code, out, err = run(capsys, "tenants", "create", "acme", "--name", "Other")
    assert (code, out) == (1, None) and err.startswith("error: tenant_exists:")
    code, out, _ = run(capsys, "tenants", "list")
    assert [(t["id"], t["name"]) for t in out["tenants"]] == [("acme", "Acme")]

    code, _, err = run(capsys, "keys", "create", "--tenant", "nobody", "--scopes", "generate")
    assert code == 1 and err.startswith("error: tenant_not_found:")
    code, _, err = run(capsys, "keys", "list", "--tenant", "nobody")
    assert code == 1 and err.startswith("error: tenant_not_found:")


def test_disable_and_enable_a_tenant(home, capsys):
    run(capsys, "tenants", "create", "acme", "--name", "Acme")
    code, out, _ = run(capsys, "tenants", "disable", "acme")
    assert code == 0 and out["tenant"]["disabled"] is True
    code, out, _ = run(capsys, "tenants", "disable", "acme", "--enable")
    assert code == 0 and out["tenant"]["disabled"] is False
    code, _, err = run(capsys, "tenants", "disable", "nobody")
    assert code == 1 and err.startswith("error: tenant_not_found:")


def test_bad_arguments_exit_2(home, capsys):
    run(capsys, "tenants", "create", "acme", "--name", "Acme")
    code, _, err = run(capsys, "keys", "create", "--tenant", "acme", "--scopes", "generate,root")
    assert code == 2 and "scopes" in err
    code, _, _ = run(capsys, "keys", "create", "--tenant", "acme", "--scopes", "generate", "--rpm", "ten")
    assert code == 2
    code, _, err = run(capsys, "keys", "revoke", "not-a-key-id")
    assert code == 2 and "key_id" in err
    code, out, _ = run(capsys, "keys", "list")
    assert out == {"keys": []}  # nothing was minted by the refused calls


def test_consent_add_and_show_versions(home, capsys):
    for tenant in ("a", "b"):
        run(capsys, "tenants", "create", tenant, "--name", tenant.upper())
    put_twin("ava", "ava/one.safetensors")
    base = ["consent", "add", "ava", "--tenants", "a,b", "--uses", "ecommerce,lookbook", "--recorded-by", "ops@x"]

    # nudity is refused for every twin by the global policy: it cannot be listed in a record
    code, out, err = run(capsys, *base, "--exclude", "nudity")
    assert (code, out) == (1, None) and err.startswith("error: invalid_field:") and "nudity" in err
    code, out, _ = run(capsys, "consent", "show", "ava")
    assert code == 0 and out == {"twin_id": "ava", "versions": []}

    code, out, _ = run(capsys, *base, "--territories", "FR,DE", "--valid-from", "2025-01-01",
                       "--valid-until", "2030-06-01T12:00:00Z", "--pay-rate-ref", "rate-7",
                       "--exclude", "swimwear", "--include", "lingerie", "--deny-term", "red carpet",
                       "--deny-term", "beach")
    assert code == 0
    first = out["consent"]
    assert (first["version"], first["tenants"], first["uses"], first["territories"]) == (
        1, ["a", "b"], ["ecommerce", "lookbook"], ["DE", "FR"])
    assert (first["excluded_categories"], first["included_categories"], first["deny_terms"]) == (
        ["swimwear"], ["lingerie"], ["beach", "red carpet"])
    assert first["pay_rate_ref"] == "rate-7" and first["recorded_by"] == "ops@x" and first["signed_at"]
    reg = registry()
    try:
        record = reg.consent_history("ava")[0]
    finally:
        reg.engine.dispose()
    assert record.valid_from.isoformat().startswith("2025-01-01T00:00:00")  # a bare date is midnight UTC
    assert record.valid_until.isoformat().startswith("2030-06-01T12:00:00")

    code, out, _ = run(capsys, "consent", "show", "ava")
    assert code == 0 and [v["version"] for v in out["versions"]] == [1]

    code, out, _ = run(capsys, "consent", "add", "ava", "--tenants", "a", "--uses", "ecommerce",
                       "--recorded-by", "ops@x")
    assert code == 0 and out["consent"]["version"] == 2
    code, out, _ = run(capsys, "consent", "show", "ava")
    assert [(v["version"], v["tenants"]) for v in out["versions"]] == [(1, ["a", "b"]), (2, ["a"])]

    code, _, err = run(capsys, "consent", "show", "ghost")
    assert code == 1 and err.startswith("error: twin_not_found:")
    code, _, err = run(capsys, "consent", "add", "ava", "--tenants", "nobody", "--uses", "ecommerce",
                       "--recorded-by", "x")
    assert code == 1 and err.startswith("error: tenant_not_found:")


@pytest.mark.parametrize(
    "flag, value",
    [
        ("--valid-from", "2025-01-01T10:00:00"),  # no timezone
        ("--valid-until", "tomorrow"),
        ("--valid-from", "2025-02-30"),
        ("--valid-from", "2025-01-01+02:00"),  # would read as 02:00 local time
    ],
)
def test_consent_add_with_a_bad_datetime_exits_2(home, capsys, flag, value):
    run(capsys, "tenants", "create", "a", "--name", "A")
    put_twin("ava", "ava/one.safetensors")
    code, out, err = run(capsys, "consent", "add", "ava", "--tenants", "a", "--uses", "ecommerce",
                         "--recorded-by", "x", flag, value)
    assert (code, out) == (2, None) and flag in err
    assert run(capsys, "consent", "show", "ava")[1]["versions"] == []


def test_twin_revoke_with_delete_removes_the_adapter_file(home, capsys):
    adapters = home / "adapters"
    for twin_id in ("ava", "bea"):
        (adapters / twin_id).mkdir(parents=True)
        (adapters / twin_id / "w.safetensors").write_bytes(b"weights " + twin_id.encode())
        put_twin(twin_id, f"{twin_id}/w.safetensors")

    code, out, _ = run(capsys, "twins", "list")
    assert code == 0 and [t["id"] for t in out["twins"]] == ["ava", "bea"]

    code, out, _ = run(capsys, "twins", "revoke", "ava", "--delete")
    assert code == 0
    assert out["twin"]["id"] == "ava" and out["twin"]["deleted"] is True and out["twin"]["revoked_at"]
    assert "ATELIER_REGISTRY_POLL_MS" in out["note"] and "new requests" in out["note"]
    assert not (adapters / "ava" / "w.safetensors").exists()
    assert (adapters / "bea" / "w.safetensors").exists()  # another twin's adapter is left alone

    code, out, _ = run(capsys, "twins", "list")
    assert [t["id"] for t in out["twins"]] == ["bea"]
    code, out, _ = run(capsys, "twins", "list", "--all")
    assert [(t["id"], t["deleted"]) for t in out["twins"]] == [("ava", True), ("bea", False)]

    code, _, err = run(capsys, "consent", "add", "ava", "--tenants", "x", "--uses", "ecommerce",
                       "--recorded-by", "x")
    assert code == 1 and err.startswith("error: twin_not_found:")  # deleted: takes no new consent
    code, _, err = run(capsys, "twins", "revoke", "ghost")
    assert code == 1 and err.startswith("error: twin_not_found:")


def test_twin_revoke_without_delete_keeps_the_file(home, capsys):
    (home / "adapters" / "ava").mkdir(parents=True)
    (home / "adapters" / "ava" / "w.safetensors").write_bytes(b"w")
    put_twin("ava", "ava/w.safetensors")
    code, out, _ = run(capsys, "twins", "revoke", "ava")
    assert code == 0 and out["twin"]["deleted"] is False and out["twin"]["revoked_at"]
    assert (home / "adapters" / "ava" / "w.safetensors").exists()
    assert run(capsys, "twins", "list")[1] == {"twins": []}
    run(capsys, "tenants", "create", "a", "--name", "A")
    code, _, err = run(capsys, "consent", "add", "ava", "--tenants", "a", "--uses", "ecommerce",
                       "--recorded-by", "x")
    assert code == 1 and err.startswith("error: twin_revoked:")


def test_a_missing_registry_folder_is_a_settings_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path / "absent"))
    monkeypatch.delenv("ATELIER_DB_URL", raising=False)
    code, out, err = run(capsys, "tenants", "list")
    assert (code, out) == (2, None) and "does not exist" in err
    monkeypatch.setenv("ATELIER_DB_URL", "not a url :// pw=hunter2")
    code, _, err = run(capsys, "tenants", "list")
    assert code == 2 and "hunter2" not in err


def test_db_upgrade_migrates_once(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    monkeypatch.delenv("ATELIER_DB_URL", raising=False)
    assert main(["db", "upgrade"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["migrated"] is True and first["revision"]
    assert main(["db", "upgrade"]) == 0
    assert json.loads(capsys.readouterr().out) == {**first, "migrated": False}
