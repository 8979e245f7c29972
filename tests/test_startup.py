"""summary.json's ``startup`` record (fedbench.startup): a process's first run times its imports from the kernel's
process start; a later run in the same process (an in-process grid's next job) imports nothing and says so."""

import csv
import json
import time

import pytest

from fedbench import startup
from fedbench.run import run
from tests.conftest import ROOT, compose_config
from tests.test_end_to_end import _cli

KEYS = ["imports_s", "data_s", "build_s", "to_first_round_s", "first_round_s"]


IMPORTED = time.time()


def test_the_process_start_is_the_kernels_and_precedes_every_import():
    # pytest imported torch, Lightning and this module after the process started: at least that long ago
    assert startup.STARTED is not None and startup.STARTED < IMPORTED
    assert startup.since_process_start() >= time.time() - IMPORTED


@pytest.mark.slow
def test_a_commands_first_run_records_its_phases(tmp_path):
    proc = _cli("rounds=2", f"hydra.run.dir={tmp_path / 'run'}", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    phases = json.loads((tmp_path / "run" / "summary.json").read_text())["startup"]
    assert list(phases) == KEYS and all(phases[k] is not None and phases[k] >= 0 for k in KEYS)
    # the imports, data and build happen before round 1 starts: process start to round 1 covers them all
    assert phases["to_first_round_s"] >= phases["imports_s"] + phases["data_s"] + phases["build_s"] - 0.003
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert phases["first_round_s"] == pytest.approx(float(rows[0]["wall_s"]), abs=1e-3)


def test_a_later_run_in_the_same_process_imports_nothing(tmp_path):
    startup.imports_s()  # whatever ran before in this process, the next run is not its first
    phases = run(compose_config(["rounds=1"], tmp_path / "run")).summary["startup"]
    assert phases["imports_s"] is None and phases["data_s"] >= 0 and phases["first_round_s"] > 0
    assert phases["to_first_round_s"] is None  # from the process start it would count the runs before this one
