"""The reliability battery: every bad input a user (or an attacker) can type ends as exactly one line
``fedbench: <kind>: <field> ...`` on stderr, with the kind's exit status (2 invalid configuration, 5 run folder), no
traceback, and nothing written: no new run folder, an existing one byte-for-byte unchanged.

The cases are those of the 224-case battery of the error-path issue and the README's troubleshooting table. Cases the
command line's precheck answers run in the fast suite; those refused once the run is built (they need torch) are slow.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

FAST = [  # (overrides, exit status, text the one line must contain)
    (["lr=1" + "0" * 300], 2, "lr must be a finite number > 0, at most 1e+12 in size (got a 301-digit number)"),
    (["lr=inf"], 2, "lr must be a finite number > 0"),
    (["lr=abc"], 2, "lr must be a number > 0 (got 'abc': a string)"),
    (["client_fraction=2"], 2, "client_fraction must be in (0, 1]"),
    (["seed=-1"], 2, "seed must be an integer >= 0"),
    (["algorithm=" + "a" * 300], 2, "algorithm"),
    (["+partitioner." + "x" * 300 + "=1"], 2, "partitioner."),
    (["lr=${oc.decode:'1'}"], 2, "lr"),
    (["partitioner.alpha=abc"], 2, "partitioner.alpha is not an option of partitioner=iid"),
    (["partitioner=dirichlet", "partitioner.alpha=abc"], 2, "partitioner.alpha must be a number"),
    (["algorithm=fédavg"], 2, "non-ASCII text must be quoted: algorithm='fédavg'"),
    (["dataset.root=./☃/x"], 2, "dataset.root"),
    (["compressor.elias=2"], 2, "compressor.elias is not an option of compressor=none"),
    (["paradigm=pipeline", "pipeline.stages=0"], 2, "pipeline.stages must be an integer >= 1 (got 0)"),
    (["paradigm=pipeline", "pipeline.stages=-2"], 2, "pipeline.stages must be an integer >= 1 (got -2)"),
    (["paradigm=pipeline", "pipeline.replicas=0"], 2, "pipeline.replicas must be an integer >= 1 (got 0)"),
    (["logger=[csv,tensorboard]"], 2, "logger must be one of ['csv', 'wandb'] (got 'tensorboard')"),
    (["+lrr=0.5"], 2, "'lrr' is not a fedbench setting or config group"),
    (["model=logistic"], 2, "model must be one of"),
    (["algorithm=fedavg,scaffold"], 2, "algorithm"),  # a sweep without -m
]
BUILT = [  # refused once the run is built from the config, still before the run folder is touched
    (["logger=wandb", "logger.wandb.mode=sideways"], 2, "logger.wandb.mode"),
    (["aggregator=multi_krum", "aggregator.m=10"], 2, "aggregator.m"),
    (["model=cifar_cnn"], 2, "model: cifar_cnn is built for 3-channel images"),
    (["+callbacks.x._target_=nope.nothing", "+callbacks.x._partial_=true"], 2, "callbacks.x._target_ cannot be imported"),
    (["dataset=synthetic", "partitioner=natural", "num_clients=30", "model=cnn"], 2, "model: cnn needs image inputs"),
    (["model.hidden=[0]"], 2, "model.hidden must be a list of layer widths"),
    (["aggregator=krum", "aggregator.f=1.5"], 2, "aggregator.f must be an integer (got 1.5)"),
    (["compressor=qsgd", "compressor.elias=2"], 2, "compressor.elias must be true or false (got 2)"),
]


def fedbench(*args: str, cwd: Path = ROOT, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    environment = {k: v for k, v in os.environ.items() if k != "HYDRA_FULL_ERROR"}
    return subprocess.run([sys.executable, "-m", "fedbench", *args], cwd=cwd, env={**environment, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def one_line(proc: subprocess.CompletedProcess) -> str:
    """The single stderr line (failing the test when there is a traceback or more than one line)."""
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert len(lines) == 1, proc.stderr[-3000:]
    return lines[0]


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _refused(tmp_path: Path, overrides: list[str], status: int, text: str) -> None:
    out = tmp_path / "run"
    proc = fedbench("rounds=1", *overrides, f"hydra.run.dir={out}")
    line = one_line(proc)
    assert proc.returncode == status, line
    kind = {2: "invalid configuration", 5: "run folder"}[status]
    assert line.startswith(f"fedbench: {kind}: "), line
    assert text in line, line
    assert not out.exists() or not any(out.iterdir()), sorted(out.rglob("*"))


@pytest.mark.parametrize("overrides,status,text", FAST, ids=[" ".join(c[0])[:60] for c in FAST])
def test_a_bad_command_line_is_one_line_and_writes_nothing(tmp_path, overrides, status, text):
    _refused(tmp_path, overrides, status, text)


@pytest.mark.slow
@pytest.mark.parametrize("overrides,status,text", BUILT, ids=[" ".join(c[0])[:60] for c in BUILT])
def test_a_config_refused_when_built_is_one_line_and_writes_nothing(tmp_path, overrides, status, text):
    _refused(tmp_path, overrides, status, text)


def test_an_unwritable_output_folder_is_a_run_folder_error(tmp_path):
    proc = fedbench("rounds=1", "hydra.run.dir=/proc/fedbench-battery/run")
    line = one_line(proc)
    assert proc.returncode == 5 and line.startswith("fedbench: run folder: ") and "hydra.run.dir" in line, line


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> tuple[Path, list[str]]:
    """A finished 1-round run (its command and folder), copied by each test that damages it."""
    folder = tmp_path_factory.mktemp("finished") / "run"
    command = ["rounds=1", "num_clients=4", "local_epochs=1"]
    proc = fedbench(*command, f"hydra.run.dir={folder}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder, command


@pytest.mark.slow
@pytest.mark.parametrize("record,damage", [
    ("status.json", "{\"status\": \"fini"), ("status.json", "\x00\x01garbage"), ("summary.json", "{\"final_acc"),
    ("summary.json", "[1, 2]"), (".hydra/config.yaml", "seed: [unclosed"), (".hydra/config.yaml", "- just\n- a list\n"),
])
def test_a_damaged_record_in_a_run_folder_is_named_and_left_alone(tmp_path, finished_run, record, damage):
    source, command = finished_run
    folder = tmp_path / "run"
    shutil.copytree(source, folder)
    (folder / record).write_text(damage)
    before = snapshot(folder)
    proc = fedbench(*command, f"hydra.run.dir={folder}")
    line = one_line(proc)
    assert proc.returncode == 5 and line.startswith("fedbench: run folder: "), line
    assert f"{record} is damaged" in line and "move it away" in line, line
    assert snapshot(folder) == before


def _report(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "fedbench.report", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


@pytest.mark.slow
@pytest.mark.parametrize("damage", [
    {"summary.json": "{not json"}, {"summary.json": "[]"}, {"summary.json": json.dumps({"config": "x"})},
    {"metrics.csv": "\x00\x01\x02"}, {"metrics.csv": "round,test_accuracy\nx,y\n"},
])
def test_the_report_names_each_folder_it_skips_and_strict_fails(tmp_path, finished_run, damage):
    source, _ = finished_run
    good, bad = tmp_path / "sweep" / "0", tmp_path / "sweep" / "1"
    shutil.copytree(source, good)
    shutil.copytree(source, bad)
    for name, text in damage.items():
        (bad / name).write_text(text)
    proc = _report(str(tmp_path / "sweep"), "--out", str(tmp_path / "report"))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert f"skipping {bad}:" in proc.stderr, proc.stderr
    strict = _report(str(tmp_path / "sweep"), "--out", str(tmp_path / "report2"), "--strict")
    assert strict.returncode == 1 and "Traceback" not in strict.stderr and f"skipping {bad}:" in strict.stderr
    alone = _report(str(bad), "--out", str(tmp_path / "report3"))
    assert alone.returncode == 1 and "Traceback" not in alone.stderr and "none of the 1 run folder(s)" in alone.stderr
