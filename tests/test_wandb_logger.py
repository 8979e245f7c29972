"""logger=wandb offline: one W&B run folder per job with the metrics logged, no network or key."""

import json
import math
from pathlib import Path

import pytest

from fedbench.loggers.wandb import clean_config, flatten, run_name, scalars
from tests.conftest import ROOT
from tests.test_end_to_end import _cli
from tests.wandb_records import config, history, read_records, run_info, summary


def test_flatten():
    assert flatten({"a": {"b": 1, "c": {"d": 2}}, "e": 3}) == {"a.b": 1, "a.c.d": 2, "e": 3}


def test_wandb_gets_scalars_a_clean_config_and_globbable_names():
    assert scalars({"round": 2, "acc": 0.5, "skipped": float("nan"), "rank_s": [0.1, 0.2], "note": "x", "ok": True}) \
        == {"round": 2, "acc": 0.5, "rank_s/0": 0.1, "rank_s/1": 0.2}
    config = {"algorithm": {"_target_": "fedbench.algorithms.fedavg.fedavg", "name": "fedavg", "upload": "weights"},
              "lr": 0.1, "logger": {"_target_": "x"}, "output_dir": "/o", "choices": {"algorithm": "fedadam"}}
    assert clean_config(config) == {"choices.algorithm": "fedadam", "algorithm.name": "fedavg",
                                    "algorithm.upload": "weights", "lr": 0.1}
    assert run_name("/s/0_algorithm=fedavg,logger=[csv,wandb]") == "0_algorithm=fedavg_logger=_csv_wandb"


ALGORITHMS = ["fedavg", "fedadam", "scaffold", "fedprox"]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """A 4-algorithm grid logged with logger=[csv,wandb] offline (2 rounds, round 1 not evaluated)."""
    folder = tmp_path_factory.mktemp("wandb") / "sweep"
    env = {"WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    proc = _cli("-m", "logger=[csv,wandb]", f"algorithm={','.join(ALGORITHMS)}", "partitioner=dirichlet", "rounds=2",
                "eval_every=2", "num_clients=8", "local_epochs=1", f"hydra.sweep.dir={folder}", cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return folder


@pytest.mark.slow
def test_offline_grid_names_each_wandb_run_by_its_choices(sweep):
    jobs = sorted(p for p in sweep.iterdir() if p.is_dir())
    assert len(jobs) == 4 and not any("[" in p.name or "logger" in p.name for p in jobs)
    seen = []
    for job in jobs:
        files = list(job.glob("wandb/offline-run-*/run-*.wandb"))
        assert len(files) == 1
        records = read_records(files[0])
        info, rows, cfg = run_info(records), history(records), config(records)
        local = json.loads((job / "summary.json").read_text())
        algorithm = local["config"]["choices"]["algorithm"]
        seen.append(algorithm)
        assert info.job_type == algorithm and info.run_group == "sweep" and info.display_name == run_name(str(job)) and "," not in info.display_name
        assert {f"algorithm={algorithm}", "dataset=digits", "partitioner=dirichlet", "topology=star"} <= set(info.tags)
        assert not [k for k in cfg if "_target_" in k or "_partial_" in k or k.startswith(("logger", "output_dir"))]
        assert cfg["choices.algorithm"] == algorithm and cfg["lr"] == 0.1 and cfg["rounds"] == 2
        assert all(isinstance(v, (int, float)) for row in rows for v in row.values())  # scalars only
        assert [r["round"] for r in rows] == [1, 2]
        assert "test_accuracy" not in rows[0] and rows[1]["test_accuracy"] > 0  # round 1 not evaluated: no NaN sent
        assert math.isclose(rows[1]["test_accuracy"], local["final_accuracy"])
        assert rows[1]["cum_bytes_up"] == local["total_bytes_up"]
        assert summary(records)["final_accuracy"] == pytest.approx(local["final_accuracy"])
        assert (job / "metrics.csv").exists()  # local files are always written too
    assert sorted(seen) == sorted(ALGORITHMS)  # fedadam is named fedadam, not the FedAvg class it is built on


@pytest.mark.slow
def test_the_report_names_the_grid_s_groups_by_algorithm(sweep, tmp_path, monkeypatch, capsys):
    from fedbench.report import figure_style
    from fedbench.report.__main__ import main as report
    from fedbench.report.table import main as table

    table([str(sweep), "--by", "algorithm"])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert sorted(r.split(" | ")[0].strip("| ") for r in rows) == sorted(ALGORITHMS)

    legends = {}
    real_save = figure_style.save

    def checked_save(fig, path):
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()
        canvas = fig.bbox
        for legend in fig.legends:
            box = legend.get_window_extent(renderer)
            assert canvas.x0 <= box.x0 and box.x1 <= canvas.x1 and canvas.y0 <= box.y0 and box.y1 <= canvas.y1, path
        legends[Path(path).stem] = [(lg.get_title().get_text(), [t.get_text() for t in lg.get_texts()])
                                    for lg in fig.legends]
        return real_save(fig, path)

    monkeypatch.setattr(figure_style, "save", checked_save)
    assert report([str(sweep), "--out", str(tmp_path / "report")]) == 0
    (title, names), = legends["accuracy_vs_round"]
    assert title == "algorithm" and sorted(names) == sorted(ALGORITHMS)
    for stem in ("accuracy_vs_round", "accuracy_vs_bytes", "accuracy_vs_time"):
        for suffix in (".png", ".pdf", ".svg"):
            assert (tmp_path / "report" / f"{stem}{suffix}").stat().st_size > 0
