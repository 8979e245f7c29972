"""A multirun with invalid cells finishes the other cells, records why each bad one failed, and
exits with the number of failed jobs."""

import csv
import json

import pytest

from tests.conftest import ROOT
from tests.test_end_to_end import _cli


@pytest.mark.slow
def test_grid_with_invalid_cells_finishes_the_rest_and_reports_the_failures(tmp_path):
    proc = _cli("-m", "lr=0.1,-1,0.05", "task._target_=fedbench.tasks.classifier.ClassifierTask,no.such.Task", "rounds=2",
                f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    jobs = sorted(p for p in tmp_path.iterdir() if p.is_dir())
    assert len(jobs) == 6
    failed = {p.name: json.loads((p / "failure.json").read_text()) for p in jobs if (p / "failure.json").exists()}
    finished = [p for p in jobs if (p / "summary.json").exists()]
    # lr=-1 fails validation (both task cells); the unknown task class fails the other two
    assert len(failed) == 4 and len(finished) == 2, proc.stderr[-3000:]
    assert proc.returncode == 4
    for name, record in failed.items():
        if "lr=-1" in name:
            assert record["type"] == "ConfigError" and record["error"].startswith("lr must be > 0 (got -1)")
        else:
            assert "no.such.Task" in record["error"] and record["traceback"]
    for job in finished:
        assert "lr=-1" not in job.name and "no.such" not in job.name
        assert len(list(csv.DictReader((job / "metrics.csv").open()))) == 2
    assert "fedbench: 4 job(s) of the sweep failed:" in proc.stderr


@pytest.mark.slow
def test_a_rerun_that_succeeds_clears_the_failure_record(tmp_path):
    bad = _cli("-m", "lr=-1", "rounds=1", f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    assert bad.returncode == 1 and (tmp_path / "0_lr=-1,rounds=1" / "failure.json").exists()
    good = _cli("-m", "rounds=1", f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    assert good.returncode == 0, good.stderr[-2000:]
    assert not (tmp_path / "0_rounds=1" / "failure.json").exists()
    assert (tmp_path / "0_lr=-1,rounds=1" / "failure.json").exists()  # an older sweep's record is left alone
