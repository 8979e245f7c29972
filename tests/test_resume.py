"""Checkpoints and resume: exact continuation, clear refusals, and survival of SIGKILL."""

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fedbench import checkpoint, status
from fedbench.errors import ConfigError
from fedbench.metrics import TIMING_COLUMNS
from fedbench.run import run
from tests.conftest import ROOT, compose_config

TIMING = TIMING_COLUMNS  # wall-clock columns can never repeat exactly; every other column must


def _rows(path: Path) -> list[dict]:
    with (path / "metrics.csv").open() as f:
        return [{k: v for k, v in row.items() if k not in TIMING} for row in csv.DictReader(f)]


def _params(path: Path) -> torch.Tensor:
    return torch.load(path / "checkpoint" / "checkpoint.pt", weights_only=True)["server"]["params"]


def test_continuing_a_run_matches_an_uninterrupted_one(tmp_path):
    alg = ["algorithm=scaffold", "partitioner=dirichlet", "num_clients=10"]  # server and client states both matter
    whole = run(compose_config([*alg, "rounds=4"], tmp_path / "whole"))
    run(compose_config([*alg, "rounds=2"], tmp_path / "split"))
    resumed = run(compose_config([*alg, "rounds=4"], tmp_path / "split"))
    assert _rows(tmp_path / "split") == _rows(tmp_path / "whole")
    assert torch.equal(resumed.server["params"], whole.server["params"])
    assert torch.equal(resumed.server["c"], whole.server["c"])


def test_finished_run_is_skipped(tmp_path, caplog, monkeypatch):
    cfg = compose_config(["rounds=2"], tmp_path / "run")
    run(cfg)
    stamp = (tmp_path / "run" / "summary.json").stat().st_mtime_ns
    caplog.set_level("INFO", logger="fedbench")

    def no_build(cfg):
        raise AssertionError("a finished run must not load data or build a model")

    monkeypatch.setattr("fedbench.federated.build", no_build)
    again = run(cfg)
    assert "already finished 2 rounds; skipping" in caplog.text
    assert (tmp_path / "run" / "summary.json").stat().st_mtime_ns == stamp and len(again.rows) == 2


def test_checkpoint_from_another_config_is_refused_and_nothing_is_touched(tmp_path):
    run(compose_config(["rounds=2"], tmp_path / "run"))
    before = (tmp_path / "run" / "metrics.csv").read_bytes(), (tmp_path / "run" / "checkpoint" / "checkpoint.pt").read_bytes()
    with pytest.raises(ConfigError, match=r"different config \(differs in: lr\)"):
        run(compose_config(["rounds=3", "lr=0.5"], tmp_path / "run"))
    after = (tmp_path / "run" / "metrics.csv").read_bytes(), (tmp_path / "run" / "checkpoint" / "checkpoint.pt").read_bytes()
    assert before == after


def test_a_run_continues_on_another_machine_whose_data_folder_is_elsewhere(tmp_path):
    # dataset.root (FEDBENCH_DATA) is where this machine keeps the files, not part of the experiment: a job taken
    # over by another machine (hydra/launcher=dask) reads the same files at its own path and continues
    from tests.fake_vision import write_mnist

    write_mnist(tmp_path / "mac"), write_mnist(tmp_path / "pc")
    args = ["dataset=mnist", "num_clients=6", "local_epochs=1"]
    run(compose_config([*args, f"dataset.root={tmp_path / 'mac'}", "rounds=2"], tmp_path / "run"))
    resumed = run(compose_config([*args, f"dataset.root={tmp_path / 'pc'}", "rounds=3"], tmp_path / "run"))
    whole = run(compose_config([*args, f"dataset.root={tmp_path / 'mac'}", "rounds=3"], tmp_path / "whole"))
    assert [r["round"] for r in resumed.rows] == [1, 2, 3] and _rows(tmp_path / "run") == _rows(tmp_path / "whole")
    assert torch.equal(resumed.server["params"], whole.server["params"])


def test_corrupt_checkpoint_is_reported_not_overwritten(tmp_path):
    ckpt = tmp_path / "run" / "checkpoint" / "checkpoint.pt"
    ckpt.parent.mkdir(parents=True)
    ckpt.write_bytes(b"not a checkpoint")
    with pytest.raises(ConfigError, match="corrupt or unreadable"):
        run(compose_config(["rounds=2"], tmp_path / "run"))
    assert ckpt.read_bytes() == b"not a checkpoint"


def test_explicit_resume_path_and_missing_path(tmp_path):
    run(compose_config(["rounds=2"], tmp_path / "a"))
    b = run(compose_config(["rounds=3", f"resume={tmp_path / 'a'}"], tmp_path / "b"))
    assert [r["round"] for r in b.rows] == [1, 2, 3] and _rows(tmp_path / "b")[:2] == _rows(tmp_path / "a")
    with pytest.raises(ConfigError, match="resume: no checkpoint at"):
        run(compose_config([f"resume={tmp_path / 'nowhere'}"], tmp_path / "c"))


def test_crash_inside_a_checkpoint_write_keeps_the_previous_one(tmp_path, monkeypatch):
    cfg = compose_config(["rounds=2"], tmp_path / "run")
    run(cfg)
    real_save = torch.save

    def torn_save(obj, f, *args, **kwargs):
        f.write(b"\x80\x02partial")  # half a file, then the process "dies"
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", torn_save)
    with pytest.raises(KeyboardInterrupt):
        run(compose_config(["rounds=3"], tmp_path / "run"))
    monkeypatch.setattr(torch, "save", real_save)
    payload = checkpoint.load(tmp_path / "run" / "checkpoint" / "checkpoint.pt", _config(cfg))
    assert payload["round"] == 2


def _config(cfg):
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


# --- real processes, real SIGKILL -------------------------------------------------------------

def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fedbench", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def _wait_for(predicate, proc: subprocess.Popen, timeout: float = 300) -> None:
    deadline = time.time() + timeout
    while not predicate():
        assert proc.poll() is None, f"process ended early:\n{proc.stdout.read()[-3000:]}"
        assert time.time() < deadline, "timed out"
        time.sleep(0.005)


def _kill(proc: subprocess.Popen) -> None:
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def _count_rows(path: Path) -> int:
    return max(0, len(path.read_text().splitlines()) - 1) if path.exists() else 0


def _checkpoint_round(run_dir: Path) -> int:
    """The round the run's last checkpoint holds (0 before the first); it is replaced atomically, so a
    read never sees half a file."""
    path = run_dir / "checkpoint" / "checkpoint.pt"
    return torch.load(path, weights_only=True)["round"] if path.exists() else 0


@pytest.mark.slow
def test_sigkill_mid_round_then_rerun_is_bit_identical(tmp_path):
    args = ["algorithm=scaffold", "rounds=6", "local_epochs=10", "num_clients=10", "client_fraction=0.5"]
    proc = _start(*args, f"hydra.run.dir={tmp_path / 'killed'}")
    _wait_for(lambda: _checkpoint_round(tmp_path / "killed") >= 2, proc)
    _kill(proc)
    done = _checkpoint_round(tmp_path / "killed")
    assert 2 <= done < 6 and not (tmp_path / "killed" / "summary.json").exists()
    rerun = _start(*args, f"hydra.run.dir={tmp_path / 'killed'}")
    assert rerun.wait(timeout=300) == 0, rerun.stdout.read()[-3000:]
    assert f"resuming after round {done}" in rerun.stdout.read()
    run(compose_config(args, tmp_path / "whole"))
    assert _rows(tmp_path / "killed") == _rows(tmp_path / "whole")
    assert torch.equal(_params(tmp_path / "killed"), _params(tmp_path / "whole"))


@pytest.mark.slow
def test_sigkill_during_checkpoint_writes_never_leaves_a_bad_checkpoint(tmp_path):
    # 300 SCAFFOLD clients x 55k params: each checkpoint is ~66 MB and rounds are tiny, so most of a
    # round is spent writing the checkpoint and the kills land inside writes
    args = ["algorithm=scaffold", "num_clients=300", "client_fraction=1", "local_epochs=1", "rounds=50",
            f"hydra.run.dir={tmp_path}"]
    ckpt = tmp_path / "checkpoint" / "checkpoint.pt"
    proc = _start(*args)
    _wait_for(ckpt.exists, proc)
    for delay in (0.3, 0.7, 0.0):
        time.sleep(delay)
        _kill(proc)
        payload = torch.load(ckpt, weights_only=True)  # must always load
        assert payload["round"] >= 1 and len(payload["rows"]) == payload["round"]
        if delay:
            stamp = ckpt.stat().st_mtime_ns
            proc = _start(*args)  # resumes from that checkpoint
            _wait_for(lambda: ckpt.stat().st_mtime_ns != stamp, proc)


@pytest.mark.slow
def test_interrupted_multirun_reruns_only_unfinished_jobs(tmp_path):
    args = ["-m", "seed=0,1,2,3", "rounds=4", "local_epochs=10", f"hydra.sweep.dir={tmp_path}"]
    proc = _start(*args)
    # a run is done once its status.json says so (written just after its summary.json)
    _wait_for(lambda: len(_done_runs(tmp_path)) >= 2, proc)
    _kill(proc)
    finished = {name: (tmp_path / name / "summary.json").stat().st_mtime_ns for name in _done_runs(tmp_path)}
    assert 2 <= len(finished) < 4
    rerun = _start(*args)
    assert rerun.wait(timeout=600) == 0
    log = rerun.stdout.read()
    assert log.count("already finished 4 rounds; skipping") == len(finished), log[-3000:]
    summaries = {p.parent.name: p.stat().st_mtime_ns for p in tmp_path.glob("*/summary.json")}
    assert len(summaries) == 4
    assert all(summaries[name] == stamp for name, stamp in finished.items())  # untouched


def _done_runs(sweep: Path) -> list[str]:
    """The sweep's job folders whose status.json records a finished run."""
    return [p.parent.name for p in sweep.glob("*/status.json") if (status.read(p.parent) or {}).get("status") == "finished"]
