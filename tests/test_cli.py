"""`atelier` admin CLI: audit verify / show, usage (over the registry's chains, or one chain's files);
exit codes and output."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from builds.audit_key import build_audit_key
from service.audit.checkpoint import CheckpointSigner
from service.audit.archive import ChainArchive
from service.audit.chain import ChainLog
from service.registry import open_registry
from service.registry.audit import AuditRecords
from service.cli import main

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture()
def home(tmp_path, monkeypatch) -> Path:
    """An ATELIER_HOME with a dev audit key and one small chain in its registry, archived in
    segments of 5 under `audit/chains/<log id>`."""
    home = tmp_path / "home"
    private, _ = build_audit_key(home / "keys")
    monkeypatch.setenv("ATELIER_HOME", str(home))
    for name in ("ATELIER_AUDIT_DIR", "ATELIER_DB_URL"):
        monkeypatch.delenv(name, raising=False)
    store = AuditRecords(open_registry(f"sqlite:///{home / 'registry.db'}").db)
    signer = CheckpointSigner.from_pem(private)
    archive = ChainArchive(store, home / "audit", segment_records=5, signer=signer)
    with ChainLog(store, signer, checkpoint_every=4, checkpoint_seconds=0, archive=archive) as log:
        for i, (twin, images) in enumerate([("t1", 2), ("t2", 1), ("t1", 3), ("t1", 1), ("t2", 4)]):
            log.append({"tenant": "acme", "twin_id": twin, "generation_id": f"gen-{i}", "outcome": "ok",
                        "num_images": images})
        log.append({"tenant": "acme", "twin_id": "t1", "generation_id": "gen-5", "outcome": "error"})
    (home / "chain").symlink_to(archive.chain_dir(log.log_id))
    return home


def test_verify_ok_uses_the_registry_and_the_default_key(home, capsys):
    assert main(["audit", "verify"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("OK: 6 records, 2 checkpoints verified in 1 chain(s) of the registry database")
    assert main(["audit", "verify", "--dir", str(home / "chain")]) == 0  # the archived copy of that chain
    assert capsys.readouterr().out.startswith("OK: 6 records, 2 checkpoints")


def test_verify_reports_the_first_problem_and_exits_1(home, capsys):
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{home / 'registry.db'}")
    with engine.begin() as c:  # a record changed in the database after it was committed
        c.execute(sa.text("UPDATE audit_records SET line = replace(line, '\"gen-2\"', '\"gen-7\"') WHERE seq = 3"))
    assert main(["audit", "verify"]) == 1
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("FAIL: hash_mismatch (seq 3 000000000001-000000000006.jsonl)"), out
    assert "problem(s); 6 records, 2 checkpoints in chain" in out
    assert out.splitlines()[-1] == "FAIL: 1 of 1 chain(s) of the registry database did not verify"
    segment = home / "chain" / "segments" / "000000000001-000000000005.jsonl"  # the archived copy, damaged
    segment.write_bytes(segment.read_bytes().replace(b'"gen-2"', b'"gen-7"'))
    assert main(["audit", "verify", "--dir", str(home / "chain")]) == 1
    assert capsys.readouterr().out.startswith("FAIL: hash_mismatch (seq 3 000000000001-000000000005.jsonl)")


def test_verify_with_another_key_fails_and_without_a_key_is_a_usage_error(home, tmp_path, capsys):
    _, other = build_audit_key(tmp_path / "other")
    assert main(["audit", "verify", "--key", str(other)]) == 1
    assert "checkpoint_unknown_key" in capsys.readouterr().out
    assert main(["audit", "verify", "--key", str(tmp_path / "absent.pem")]) == 2
    assert "absent.pem" in capsys.readouterr().err


def test_show_prints_the_records_of_a_generation(home, capsys):
    assert main(["audit", "show", "gen-3"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert (record["seq"], record["generation_id"], record["num_images"]) == (4, "gen-3", 1)
    assert main(["audit", "show", "gen-404"]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and "gen-404" in captured.err


def test_usage_csv_and_json_with_filters(home, capsys):
    assert main(["usage"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "day,tenant,twin_id,generations,images"
    assert [line.split(",")[2:] for line in out[1:]] == [["t1", "3", "6"], ["t2", "2", "5"]]
    assert main(["usage", "--twin", "t2", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["twin_id"], r["images"]) for r in rows] == [("t2", 5)]
    assert main(["usage", "--from", "2000-01-01", "--to", "2000-12-31", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_bad_arguments_exit_2(home, capsys):
    with pytest.raises(SystemExit) as info:
        main(["usage", "--from", "yesterday"])
    assert info.value.code == 2
    assert main(["usage", "--from", "2025-02-01", "--to", "2025-01-01"]) == 2
    assert "--from is after --to" in capsys.readouterr().err


def test_from_s3_without_shipper_exits_2(home, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "service.audit.shipper", None)  # import now fails
    assert main(["audit", "verify", "--from-s3", "--log-id", "0123456789abcdef"]) == 2
    assert "--from-s3 needs service.audit.shipper" in capsys.readouterr().err
    monkeypatch.delitem(sys.modules, "service.audit.shipper")
    assert main(["audit", "verify", "--from-s3"]) == 2  # which chain?
    assert "--from-s3 needs --log-id" in capsys.readouterr().err


def test_from_s3_verifies_the_downloaded_copy(home, monkeypatch, capsys):
    downloaded: list[Path] = []

    def download_log(dest: Path, log_id: str) -> None:
        downloaded.append(dest)
        assert log_id == (home / "chain" / "log_id").read_text().strip()
        shutil.copytree(home / "chain", dest, dirs_exist_ok=True)

    monkeypatch.setitem(sys.modules, "service.audit.shipper", types.SimpleNamespace(download_log=download_log))
    assert main(["audit", "verify", "--from-s3", "--dir", str(home / "chain")]) == 0
    assert str(downloaded[0]) in capsys.readouterr().out
    assert not downloaded[0].exists()  # the temporary copy is removed afterwards


def test_cli_runs_as_a_program(home):
    done = subprocess.run([sys.executable, "-m", "service.cli", "audit", "verify"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("OK: 6 records")


def _lora(rank: int, names=("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",), width: int = 32) -> dict:
    import numpy as np

    rng = np.random.default_rng(rank)
    tensors = {}
    for name in names:
        tensors[f"unet.{name}.lora_A.weight"] = rng.standard_normal((rank, width)).astype(np.float32)
        tensors[f"unet.{name}.lora_B.weight"] = rng.standard_normal((width, rank)).astype(np.float32) * 0.01
    return tensors


def test_twins_check_accepts_the_demo_adapter_and_says_why_it_refuses_others(demo_home, tmp_path, monkeypatch, capsys):
    """`atelier twins check FILE` runs the registration's own checks offline: a brand learns
    whether its adapter will be accepted, and the API's error code and message when not."""
    from safetensors.numpy import save_file

    monkeypatch.setenv("ATELIER_HOME", str(tmp_path))
    assert main(["twins", "check", str(demo_home / "adapters" / "demo-ava.safetensors")]) == 0
    accepted = json.loads(capsys.readouterr().out)
    assert accepted["accepted"] is True and accepted["rank"] == 4 and accepted["layers"] > 0

    def refused(path: Path) -> dict:
        assert main(["twins", "check", str(path)]) == 1
        answer = json.loads(capsys.readouterr().out)
        assert answer["accepted"] is False
        return answer["error"]

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00not json at all!")
    assert refused(garbage)["code"] == "adapter_incompatible"
    pickle = tmp_path / "adapter.bin"
    pickle.write_bytes(b"\x80\x04K\x01.")
    assert refused(pickle)["code"] == "unsafe_weights"
    too_wide = tmp_path / "rank64.safetensors"
    save_file(_lora(64), str(too_wide))  # above the slot's rank (ATELIER_LORA_SLOT_RANK, 32)
    error = refused(too_wide)
    assert error["code"] == "adapter_incompatible" and "rank" in error["message"]
    text_encoder = tmp_path / "te.safetensors"
    save_file({k.replace("unet.", "text_encoder.", 1): v for k, v in _lora(4).items()}, str(text_encoder))
    assert "text-encoder" in refused(text_encoder)["message"]
    monkeypatch.setenv("ATELIER_MAX_UPLOAD_BYTES", "1024")
    assert refused(demo_home / "adapters" / "demo-ava.safetensors")["code"] == "payload_too_large"
    assert main(["twins", "check", str(tmp_path / "absent.safetensors")]) == 2  # a usage error, not a verdict
