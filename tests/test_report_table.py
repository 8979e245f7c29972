"""The summary table reads run folders, groups them, and reports unfinished runs."""

import json
from pathlib import Path

from fedbench.report.runs import find_run_dirs, load_run
from fedbench.report.table import summary_table


def _fake_run(path, mu, seed, acc, finished=True):
    path.mkdir(parents=True)
    (path / "metrics.csv").write_text("round,test_accuracy\n1,0.5\n")
    if finished:
        summary = {"config": {"seed": seed, "algorithm": {"mu": mu}}, "final_accuracy": acc, "rounds_to_target": None,
                   "rounds_completed": 1}
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


def _record(algorithm, server, lr, seed):
    from fedbench.report.runs import RunRecord

    config = {"seed": seed, "lr": lr, "choices": {"algorithm": algorithm, "server_optimizer": server},
              "algorithm": {"_target_": "fedbench.algorithms.fedavg.fedavg", "name": algorithm},
              "server_optimizer": {"_target_": f"fedbench.server_opt.{server}", "lr": 1.0 if server == "sgd" else 0.01}}
    return RunRecord(Path(f"{algorithm}-{lr}-{seed}"), {"config": config, "final_accuracy": lr, "rounds_completed": 1})


def test_groups_are_the_choices_that_vary_and_settings_that_split_them():
    from fedbench.report.grouping import group_values, label, varying_keys
    from fedbench.report.table import group_value

    runs = [_record(a, s, lr, seed) for a, s in (("fedavg", "sgd"), ("fedadam", "adam"))
            for lr in (0.1, 0.3) for seed in (0, 1)]
    keys = varying_keys(runs)  # the preset's server optimizer and its lr follow the algorithm: not factors
    assert keys == ["choices.algorithm", "lr"]
    assert label(group_values(runs[2], keys)) == "algorithm=fedavg, lr=0.3"
    assert [group_value(r.summary, "algorithm") for r in runs[::4]] == ["fedavg", "fedadam"]
    assert group_value(runs[0].summary, "server_optimizer.lr") == 1.0
