"""The default run, determinism, and the command line (multirun, errors)."""

import csv
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fedbench.metrics import COLUMNS
from fedbench.run import run
from tests.conftest import ROOT


def test_default_config_reaches_target(make_cfg):
    result = run(make_cfg())
    out = result.output_dir
    assert result.summary["final_accuracy"] >= 0.90
    assert result.summary["rounds_to_target"] is not None
    with (out / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert tuple(rows[0].keys()) == COLUMNS and len(rows) == 20
    assert float(rows[-1]["test_accuracy"]) == pytest.approx(result.summary["final_accuracy"])
    assert (out / "summary.json").exists() and (out / "partition.json").exists()


def test_same_seed_same_numbers_and_eval_every(make_cfg):
    a = run(make_cfg("rounds=4", "eval_every=3", "partitioner=dirichlet"))
    b = run(make_cfg("rounds=4", "eval_every=3", "partitioner=dirichlet"))
    assert [r["test_accuracy"] for r in a.rows][2:] == [r["test_accuracy"] for r in b.rows][2:]
    assert (a.server["params"] == b.server["params"]).all()
    assert math.isnan(a.rows[0]["test_accuracy"]) and not math.isnan(a.rows[2]["test_accuracy"])
    assert not math.isnan(a.rows[3]["test_accuracy"])  # the last round is always evaluated


def _cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "HYDRA_FULL_ERROR": "0", **(env or {})}
    return subprocess.run([sys.executable, "-m", "fedbench", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


@pytest.mark.slow
def test_cli_multirun_writes_one_metrics_file_per_job(tmp_path):
    proc = _cli("-m", "algorithm=fedsgd,fedavg", "num_clients=10,50", "rounds=2", f"hydra.sweep.dir={tmp_path}",
                cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = sorted(tmp_path.glob("*/metrics.csv"))
    assert len(files) == 4
    for f in files:
        assert len(list(csv.DictReader(f.open()))) == 2
    assert {f.parent.name.split("_", 1)[1] for f in files} == {
        f"algorithm={a},num_clients={n},rounds=2" for a in ("fedsgd", "fedavg") for n in (10, 50)}


@pytest.mark.slow
def test_cli_bad_value_exits_2_with_the_field(tmp_path):
    proc = _cli("client_fraction=1.5", f"hydra.run.dir={tmp_path}", cwd=ROOT)
    assert proc.returncode == 2
    assert "client_fraction must be in (0, 1] (got 1.5)" in proc.stderr
    assert not (tmp_path / "metrics.csv").exists()


def test_cli_unknown_option_lists_valid_ones(tmp_path):
    proc = _cli("algorithm=fedfoo", f"hydra.run.dir={tmp_path}", cwd=ROOT)
    assert proc.returncode == 2
    assert proc.stderr.startswith("fedbench: invalid configuration: algorithm must be one of ['fedavg', ")
    assert "fedsgd" in proc.stderr and "(got 'fedfoo')" in proc.stderr
