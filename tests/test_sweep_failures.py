"""A multirun with cells that fail while building finishes the other cells, records why each bad one failed, and
exits with the number of failed jobs; a flat value the precheck can judge refuses the whole grid before any cell runs."""

import csv
import json

import pytest

from tests.conftest import ROOT
from tests.test_end_to_end import _cli


@pytest.mark.slow
def test_grid_with_invalid_cells_finishes_the_rest_and_reports_the_failures(tmp_path):
    proc = _cli("-m", "lr=0.1,0.05", "task._target_=fedbench.tasks.classifier.ClassifierTask,no.such.Task,no.other.Task",
                "rounds=2", f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(jobs) == 6
    failed = {p.name: json.loads((p / "failure.json").read_text()) for p in jobs if (p / "failure.json").exists()}
    finished = [p for p in jobs if (p / "summary.json").exists()]
    # the unknown task classes are only found when a cell builds its task: those four cells fail, the other two run
    assert len(failed) == 4 and len(finished) == 2, proc.stderr[-3000:]
    assert proc.returncode == 4
    for name, record in failed.items():
        assert ("no.such.Task" in record["error"] or "no.other.Task" in record["error"]) and record["traceback"]
    for job in finished:
        assert "no.such" not in job.name and "no.other" not in job.name
        assert len(list(csv.DictReader((job / "metrics.csv").open()))) == 2
    assert "fedbench: 4 job(s) of the sweep failed:" in proc.stderr


@pytest.mark.slow
def test_a_grid_with_an_invalid_flat_value_is_refused_before_any_cell_runs(tmp_path):
    proc = _cli("-m", "lr=0.1,-1", "rounds=1", f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    assert proc.returncode == 2 and "lr must be > 0 (got -1)" in proc.stderr
    assert not tmp_path.exists() or not any(p.is_dir() for p in tmp_path.iterdir())


@pytest.mark.slow
def test_a_rerun_that_succeeds_clears_the_failure_record(tmp_path):
    bad = _cli("-m", "task._target_=no.such.Task", "rounds=1", f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    old = tmp_path / "0_rounds=1,task._target_=no.such.Task"
    assert bad.returncode == 1 and (old / "failure.json").exists(), (bad.returncode, bad.stderr[-2000:])
    good = _cli("-m", "rounds=1", f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    assert good.returncode == 0, good.stderr[-2000:]
    assert not (tmp_path / "0_rounds=1" / "failure.json").exists()
    assert (old / "failure.json").exists()  # an older sweep's record is left alone
