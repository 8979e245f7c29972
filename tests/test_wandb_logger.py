"""logger=wandb offline: one W&B run folder per job with the metrics logged, no network or key."""

import json
import math

import pytest

from fedbench.loggers.wandb import flatten
from tests.conftest import ROOT
from tests.test_end_to_end import _cli
from tests.wandb_records import history, read_records, run_info, summary


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


@pytest.mark.slow
def test_offline_multirun_writes_one_wandb_run_per_job(tmp_path, monkeypatch):
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    proc = _cli("-m", "logger=wandb", "algorithm=fedavg,scaffold", "partitioner=dirichlet", "rounds=3", "eval_every=2",
                f"hydra.sweep.dir={tmp_path / 'sweep'}", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    jobs = sorted(p for p in (tmp_path / "sweep").iterdir() if p.is_dir())
    assert len(jobs) == 2
    for job in jobs:
        files = list(job.glob("wandb/offline-run-*/run-*.wandb"))
        assert len(files) == 1
        records = read_records(files[0])
        info, rows = run_info(records), history(records)
        local = json.loads((job / "summary.json").read_text())
        assert info.job_type == local["algorithm"] and info.run_group == "sweep"
        assert list(info.tags) == ["digits", "dirichlet"]
        assert [r["round"] for r in rows] == [1, 2, 3]
        assert "test_accuracy" not in rows[0] and rows[1]["test_accuracy"] > 0  # round 1 not evaluated: no NaN sent
        assert math.isclose(rows[2]["test_accuracy"], local["final_accuracy"])
        assert rows[2]["cum_bytes_up"] == local["total_bytes_up"]
        assert summary(records)["final_accuracy"] == pytest.approx(local["final_accuracy"])
        assert (job / "metrics.csv").exists()  # local files are always written too
