"""The summary table reads run folders, groups them, and reports unfinished runs."""

import json

from fedbench.report.runs import find_run_dirs, load_run
from fedbench.report.table import summary_table


def _fake_run(path, mu, seed, acc, finished=True):
    path.mkdir(parents=True)
    (path / "metrics.csv").write_text("round,test_accuracy\n1,0.5\n")
    if finished:
        summary = {"config": {"seed": seed, "algorithm": {"mu": mu}}, "final_accuracy": acc, "rounds_to_target": None}
        (path / "summary.json").write_text(json.dumps(summary))


def test_groups_by_key_and_averages_seeds(tmp_path):
    _fake_run(tmp_path / "0", mu=0, seed=0, acc=0.5)
    _fake_run(tmp_path / "1", mu=0, seed=1, acc=0.7)
    _fake_run(tmp_path / "2", mu=1, seed=0, acc=0.9)
    _fake_run(tmp_path / "3", mu=1, seed=1, acc=0.0, finished=False)
    records = [load_run(p) for p in find_run_dirs([tmp_path])]
    assert [r.problem for r in records][3].startswith("unfinished: no summary.json (1 rounds")
    table = summary_table([r for r in records if not r.problem], ["algorithm.mu"]).splitlines()
    assert table[2].startswith("| 0 | 2 | 0.6000 |") and table[3].startswith("| 1 | 1 | 0.9000 |")
