"""Open metrics: extra columns (a server update's metrics) reach metrics.csv, survive resume and the
report; the logger group is a list (csv + wandb); user callbacks and early stopping."""

import csv
import json

import pytest

from fedbench.callbacks import Callback
from fedbench.loggers.csv import csv_logger
from fedbench.metrics import COLUMNS
from fedbench.run import run
from tests.conftest import ROOT, compose_config

NOVA = ["algorithm=fednova", "num_clients=6", "client_fraction=0.5", "local_epochs=1", "local_epochs_max=3", "rounds=3"]


def _csv(path):
    with path.open() as f:
        return list(csv.DictReader(f))


def test_server_update_metrics_become_columns(make_cfg):
    result = run(make_cfg(*NOVA))
    rows = _csv(result.output_dir / "metrics.csv")
    assert list(rows[0])[: len(COLUMNS)] == list(COLUMNS) and "tau_eff" in rows[0]
    for row, mem in zip(rows, result.rows):
        assert float(row["tau_eff"]) == pytest.approx(mem["tau_eff"]) and float(row["tau_eff"]) >= 1


def test_a_new_column_widens_the_header_and_keeps_earlier_rows(tmp_path):
    log = csv_logger(str(tmp_path))
    log.on_round_end({"round": 1, "test_accuracy": 0.5}, {}, {})
    log.on_round_end({"round": 2, "test_accuracy": 0.6, "extra": 3.5}, {}, {})
    log.on_round_end({"round": 3, "test_accuracy": 0.7, "extra": 4.5}, {}, {})
    rows = _csv(tmp_path / "metrics.csv")
    assert [r["round"] for r in rows] == ["1", "2", "3"] and [r["extra"] for r in rows] == ["", "3.5", "4.5"]
    # resuming from a checkpoint rewrites the file from the restored rows, wide header included
    csv_logger(str(tmp_path), {}, [{"round": 1, "test_accuracy": 0.5}, {"round": 2, "extra": 3.5}])
    assert [r["extra"] for r in _csv(tmp_path / "metrics.csv")] == ["", "3.5"]


def test_extra_columns_survive_resume(tmp_path):
    whole = run(compose_config(NOVA, tmp_path / "whole"))
    run(compose_config([*NOVA[:-1], "rounds=2"], tmp_path / "split"))
    run(compose_config(NOVA, tmp_path / "split"))
    a, b = _csv(whole.output_dir / "metrics.csv"), _csv(tmp_path / "split" / "metrics.csv")
    assert [r["tau_eff"] for r in a] == [r["tau_eff"] for r in b]


@pytest.mark.slow
def test_extra_column_appears_in_the_report(tmp_path):
    from fedbench.report.__main__ import main

    run(compose_config(NOVA, tmp_path / "runs" / "nova"))
    run(compose_config([*NOVA[1:], "algorithm=fedavg"], tmp_path / "runs" / "avg"))
    assert main([str(tmp_path / "runs"), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "systems_report.md").read_text()
    assert "## Other per-round metrics" in text and "| tau_eff |" in text
    assert (tmp_path / "report" / "extra_metrics.png").exists()


@pytest.mark.slow
def test_logger_list_writes_csv_and_wandb(tmp_path, monkeypatch):
    from tests.test_end_to_end import _cli
    from tests.wandb_records import history, read_records

    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    # a separate process: W&B's writer has flushed its record file once the process has exited
    proc = _cli("logger=[csv,wandb]", *NOVA, f"hydra.run.dir={tmp_path}", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = list(tmp_path.glob("wandb/offline-run-*/run-*.wandb"))
    assert len(files) == 1
    logged, rows = history(read_records(files[0])), _csv(tmp_path / "metrics.csv")
    assert [r["round"] for r in logged] == [1, 2, 3] and len(rows) == 3
    assert [r["tau_eff"] for r in logged] == pytest.approx([float(r["tau_eff"]) for r in rows])  # open columns too
    assert json.loads((tmp_path / "summary.json").read_text())["rounds_completed"] == 3


seen: list = []


def recording_callback(output_dir, config, history, stop_after: int = 2):
    """A user callback (conf: callbacks.rec={_target_: tests.test_open_metrics.recording_callback, _partial_: true})."""

    def on_round_end(row, server, clients):
        seen.append((row["round"], "params" in server, len(history)))
        return row["round"] >= stop_after

    return Callback(on_round_end=on_round_end, on_round_start=lambda r: seen.append(("start", r)))


def test_user_callbacks_see_rounds_and_can_stop_the_run(make_cfg):
    seen.clear()
    cb = "+callbacks.rec={_target_: tests.test_open_metrics.recording_callback, _partial_: true, stop_after: 2}"
    result = run(make_cfg(cb, "rounds=5"))
    assert seen == [("start", 1), (1, True, 0), ("start", 2), (2, True, 0)]
    assert len(result.rows) == 2 and result.summary["stopped_early"] is True
    assert len(_csv(result.output_dir / "metrics.csv")) == 2
