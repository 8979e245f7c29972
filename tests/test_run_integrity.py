"""Run integrity: one writer per run folder (two real processes), checksummed checkpoints, and
reports that skip unreadable runs."""

import csv
import json
import os
from pathlib import Path

import pytest
import torch

from fedbench import checkpoint
from fedbench.errors import ConfigError
from fedbench.run import run
from fedbench.runlock import run_folder_lock
from tests.conftest import compose_config
from tests.test_resume import _count_rows, _start, _wait_for


@pytest.mark.slow
def test_a_second_writer_is_refused_and_the_first_run_stays_intact(tmp_path):
    args = ["rounds=40", "local_epochs=2", f"hydra.run.dir={tmp_path}"]
    first = _start(*args)
    _wait_for(lambda: _count_rows(tmp_path / "metrics.csv") >= 1, first)
    second = _start(*args)
    assert second.wait(timeout=300) == 2
    err = second.stdout.read()
    assert f"output_dir {tmp_path} is in use by another run" in err and f'"pid": {first.pid}' in err
    assert first.wait(timeout=600) == 0
    rows = list(csv.DictReader((tmp_path / "metrics.csv").open()))
    assert [int(r["round"]) for r in rows] == list(range(1, 41))


def test_the_lock_is_released_when_the_run_ends(tmp_path):
    with run_folder_lock(tmp_path):
        with pytest.raises(ConfigError, match="is in use by another run"):
            with run_folder_lock(tmp_path):
                pass
    with run_folder_lock(tmp_path):  # free again
        assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()


def _flip_a_tensor_byte(path):
    """Change one byte inside a stored tensor of a torch zip (what torch.load does not notice)."""
    import zipfile

    import struct

    with zipfile.ZipFile(path) as z:
        names = [n for n in z.namelist() if "/data/" in n]
        info = z.getinfo(max(names, key=lambda n: z.getinfo(n).file_size))
    raw = bytearray(path.read_bytes())
    name_len, extra_len = struct.unpack("<HH", raw[info.header_offset + 26 : info.header_offset + 30])
    raw[info.header_offset + 30 + name_len + extra_len + 8] ^= 0x40  # the local header's own lengths
    path.write_bytes(bytes(raw))


def test_a_bit_flipped_checkpoint_is_refused(tmp_path):
    cfg = compose_config(["rounds=2", "checkpoint_every=1"], tmp_path / "run")
    run(cfg)
    ckpt = tmp_path / "run" / "checkpoint" / "checkpoint.pt"
    torch.load(ckpt, weights_only=True)  # loads fine before
    _flip_a_tensor_byte(ckpt)
    torch.load(ckpt, weights_only=True)  # torch itself does not notice
    more = compose_config(["rounds=3", "checkpoint_every=1"], tmp_path / "run")
    with pytest.raises(ConfigError, match="fails its checksum"):
        run(more)


def test_a_checkpoint_without_its_keys_gets_a_clear_error(tmp_path):
    ckpt = tmp_path / "checkpoint.pt"
    torch.save({"format": checkpoint.FORMAT, "round": 1}, ckpt)
    with pytest.raises(ConfigError, match="lacks rows, fingerprint, config, server"):
        checkpoint.load(ckpt, {})


def test_temporaries_of_killed_writers_are_removed(tmp_path):
    stale = tmp_path / f".{checkpoint.FILENAME}.tmp-999999999"
    stale.write_bytes(b"half a checkpoint")
    checkpoint.save(tmp_path, {"round": 1, "rows": [], "fingerprint": "x", "config": {}, "server": {}})
    assert not stale.exists() and (tmp_path / checkpoint.FILENAME).exists()


@pytest.mark.slow
def test_report_skips_a_run_with_an_unreadable_metrics_file(tmp_path, capsys):
    from fedbench.report.__main__ import main

    run(compose_config(["rounds=2"], tmp_path / "runs" / "good"))
    run(compose_config(["rounds=2", "seed=1"], tmp_path / "runs" / "bad"))
    (tmp_path / "runs" / "bad" / "metrics.csv").write_bytes(b'round,"test_accuracy\n1,\x00"0.5\n2,"')
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    captured = capsys.readouterr()
    assert f"skipping {tmp_path / 'runs' / 'bad'}: unreadable metrics.csv" in captured.err
    assert "(1 runs, 1 skipped)" in captured.out


def test_a_baseline_refuses_a_federated_runs_folder_and_touches_nothing(tmp_path):
    run(compose_config(["rounds=2"], tmp_path / "run"))
    records = lambda: {p.name: p.read_bytes() for p in (tmp_path / "run").rglob("*")  # noqa: E731
                       if p.is_file() and p.name != ".lock"}
    before = records()
    with pytest.raises(ConfigError, match="was written by a different config"):
        run(compose_config(["rounds=2", "paradigm=centralized"], tmp_path / "run"))
    assert records() == before and "checkpoint.pt" in before


def test_starting_over_drops_the_old_summary_so_a_killed_restart_is_not_skipped(tmp_path, monkeypatch):
    run(compose_config(["rounds=2"], tmp_path / "run"))
    from fedbench.topology import star

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # the restart dies in its first round, before any checkpoint
    monkeypatch.setattr(star, "step", killed)
    monkeypatch.setattr("fedbench.topology.star.star", lambda: star.Topology("star", star.init, killed))
    with pytest.raises(KeyboardInterrupt):
        run(compose_config(["rounds=2", "resume=none"], tmp_path / "run"))
    assert not (tmp_path / "run" / "summary.json").exists()  # no "already finished" on the next plain rerun


@pytest.mark.slow
def test_a_refused_command_leaves_the_runs_hydra_record_untouched(tmp_path):
    """Case 5: .hydra/ is written once the run is accepted; a refused command (another config into the
    folder, a bad value) rewrites nothing."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "fedbench", *args, f"hydra.run.dir={tmp_path}"], cwd=ROOT,
                              capture_output=True, text=True, timeout=300)

    assert cli("rounds=2").returncode == 0
    record = {p.name: p.read_text() for p in (tmp_path / ".hydra").iterdir()}
    assert set(record) == {"config.yaml", "hydra.yaml", "overrides.yaml"} and "rounds=2" in record["overrides.yaml"]
    for bad in (["rounds=2", "lr=0.5"], ["rounds=2", "partitioner=dirichlet", "partitioner.alpha=abc"], ["+lrr=1"]):
        assert cli(*bad).returncode == 2
        assert {p.name: p.read_text() for p in (tmp_path / ".hydra").iterdir()} == record


def test_status_file_says_running_then_the_outcome(make_cfg, tmp_path):
    """The run's status is explicit: finished, diverged, or failed with the error; a folder whose status
    is not done is resumed, not skipped."""
    from fedbench import status

    cfg = make_cfg("rounds=2", "local_epochs=1")
    result = run(cfg)
    out = Path(cfg.output_dir)
    assert status.read(out)["status"] == "finished" == result.summary["status"]
    status.write(out, "running")  # as a kill right after the summary was written would leave it
    again = run(cfg)  # not skipped: the run continues from its checkpoint (nothing left to train) and ends finished
    assert status.read(out)["status"] == "finished" and again.rows == result.rows

    bad = make_cfg("rounds=3", "lr=1000", "local_epochs=1")
    assert run(bad).summary["status"] == "diverged" == status.read(Path(bad.output_dir))["status"]


def test_a_failing_run_records_failed_with_its_error(make_cfg):
    from fedbench import status

    cfg = make_cfg("rounds=2", "local_epochs=1", "+callbacks.boom={_target_: tests.test_run_integrity.exploding, _partial_: true}")
    with pytest.raises(RuntimeError, match="boom at round 1"):
        run(cfg)
    record = status.read(Path(cfg.output_dir))
    assert record["status"] == "failed" and "boom at round 1" in record["error"]


def exploding(output_dir, config, history):
    from fedbench.callbacks import Callback

    def end(row, server, clients):
        raise RuntimeError(f"boom at round {row['round']}")

    return Callback(on_round_end=end)
