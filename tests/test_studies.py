"""Study presets and the all-algorithms grid run from the command line."""

import csv
import json
import math

import pytest

from tests.conftest import ROOT
from tests.test_end_to_end import _cli

ALGORITHMS = "fedavg,fedprox,scaffold,fednova,fedadam,fedyogi,fedadagrad,fedavgm,feddyn,fedadmm"


@pytest.mark.slow
def test_every_algorithm_runs_three_rounds_from_the_cli(tmp_path):
    proc = _cli("-m", f"algorithm={ALGORITHMS}", "rounds=3", f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/summary.json"))]
    assert sorted(s["algorithm"] for s in summaries) == sorted(ALGORITHMS.split(","))
    for path in tmp_path.glob("*/metrics.csv"):
        rows = list(csv.DictReader(path.open()))
        assert len(rows) == 3
        assert all(math.isfinite(float(r[k])) for r in rows for k in ("test_accuracy", "test_loss", "train_loss"))


@pytest.mark.slow
def test_fedprox_synthetic_quick_study_runs_end_to_end(tmp_path):
    # the quick preset, shrunk further for the test: one heterogeneity level, 3 rounds
    proc = _cli("-m", "+study=fedprox_synthetic_quick", "synthetic_heterogeneity=1.0", "rounds=3",
                f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summaries = [json.loads(p.read_text()) for p in tmp_path.glob("*/summary.json")]
    assert len(summaries) == 3 * 2 * 2  # stragglers x mu x drop
    configs = [s["config"] for s in summaries]
    assert {c["dataset"]["alpha"] for c in configs} == {1.0} and {c["num_clients"] for c in configs} == {30}
    assert {c["local_epochs"] for c in configs} == {5} and {c["straggler_fraction"] for c in configs} == {0.0, 0.5, 0.9}
    dropped = [s for s in summaries if s["config"]["straggler_fraction"] == 0.9 and s["config"]["algorithm"]["drop_stragglers"]]
    kept = [s for s in summaries if s["config"]["straggler_fraction"] == 0.9 and not s["config"]["algorithm"]["drop_stragglers"]]
    assert all(s["total_messages_up"] == 3 * 1 for s in dropped)  # 9 of 10 straggle: 1 upload per round
    assert all(s["total_messages_up"] == 3 * 10 for s in kept)
