"""python -m fedbench.report: figures, systems_report.md, numbers equal to the run folders,
the communication study's exact byte totals, and clear messages for empty or unfinished sweeps."""

import csv
import json
import math
import subprocess
import sys

import pytest

from fedbench.report import analysis as A
from fedbench.report.__main__ import main as report
from tests.conftest import ROOT

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _sweep(tmp_path, *overrides):
    proc = subprocess.run([sys.executable, "-m", "fedbench", "-m", *overrides, f"hydra.sweep.dir={tmp_path / 'sweep'}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return tmp_path / "sweep"


def _md_rows(text: str, header_start: str) -> list[list[str]]:
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(f"| {header_start}"))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([c.strip() for c in line.strip("|").split("|")])
    return rows


@pytest.mark.slow
def test_client_number_study_report(tmp_path, capsys):
    sweep = _sweep(tmp_path, "+study=client_number", "num_clients=10,20", "rounds=3")
    out = tmp_path / "report"
    assert report([str(sweep), "--out", str(out)]) == 0
    text = (out / "systems_report.md").read_text()
    for section in ("Introduction", "Experimental setup", "Results", "Scaling", "Communication analysis",
                    "HPO findings", "Discussion"):
        assert f"\n## {section}\n" in text
    pngs = sorted(out.glob("*.png"))
    assert {p.name for p in pngs} >= {"accuracy_vs_round.png", "accuracy_vs_bytes.png", "time_breakdown.png",
                                      "label_distribution_0.png"}
    import matplotlib.image

    for png in pngs:
        assert png.read_bytes()[:8] == PNG_MAGIC and matplotlib.image.imread(png).shape[0] > 100
        assert f"]({png.name})" in text  # every figure is embedded
    # the table's numbers are the run folders' numbers
    summaries = {}
    for path in sweep.glob("*/summary.json"):
        s = json.loads(path.read_text())
        summaries[(s["algorithm"], s["config"]["num_clients"])] = s
    rows = _md_rows(text, "group |")
    assert len(rows) == 4
    for row in rows:
        values = dict(kv.split("=") for kv in row[0].split(", "))
        s = summaries[(values["algorithm"], int(values["num_clients"]))]
        assert row[2] == f"{s['final_accuracy']:.4f}" and row[4] == f"{s['best_accuracy']:.4f}"
        assert int(row[6]) == s["total_messages_up"] + s["total_messages_down"]
        assert float(row[7]) == pytest.approx((s["total_bytes_up"] + s["total_bytes_down"]) / 1e6, abs=1e-4)
    with (out / "summary_table.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 4


@pytest.mark.slow
def test_communication_study_bytes_equal_the_analytic_totals(tmp_path):
    rounds = 3
    sweep = _sweep(tmp_path, "+study=communication", f"rounds={rounds}")
    by_method = {}
    for path in sweep.glob("*/summary.json"):
        s = json.loads(path.read_text())
        by_method[s["algorithm"] if s["config"]["paradigm"] == "federated" else s["config"]["paradigm"]] = s
    p = by_method["fedavg"]["num_params"]
    assert p == 64 * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10  # the 2NN on 8x8 digits
    total = {k: s["total_bytes_up"] + s["total_bytes_down"] for k, s in by_method.items()}
    # data-parallel SGD: N = 2 ranks; an epoch is ceil(ceil(1438 / 2) / (100 / 2)) = 15 steps
    # (the command line's rounds= overrides the arm's 1 epoch): 2 (N-1) P 4 S
    assert by_method["data_parallel"]["rounds_completed"] == rounds
    assert total["data_parallel"] == 2 * 1 * p * 4 * math.ceil(719 / 50) * rounds
    # parameter-server SGD: every one of N = 10 clients sends a gradient and receives the model each step
    assert total["fedsgd"] == 2 * 10 * p * 4 * rounds
    # FedAvg: m = floor(0.1 * 10) = 1 client per round, R rounds
    assert total["fedavg"] == 2 * 1 * p * 4 * rounds
    out = tmp_path / "report"
    assert report([str(sweep), "--out", str(out)]) == 0
    comm = _md_rows((out / "systems_report.md").read_text(), "group | method")
    difference = A.COMM_HEADER.index("difference")  # analytic minus measured bytes
    assert len(comm) == 3 and all(row[difference] == "0" for row in comm) and all(row[4] == "measured" for row in comm)


def test_empty_and_unfinished_sweeps_say_what_is_missing(tmp_path, capsys):
    assert report([str(tmp_path / "nowhere")]) == 1
    assert "no such folder" in capsys.readouterr().err
    assert report([str(tmp_path)]) == 1
    assert "no run folders under" in capsys.readouterr().err
    run = tmp_path / "0_algorithm=fedavg"
    run.mkdir()
    (run / "metrics.csv").write_text("round,test_accuracy\n1,0.5\n2,0.6\n")
    assert report([str(tmp_path), "--out", str(tmp_path / "r")]) == 1
    err = capsys.readouterr().err
    assert "unfinished: no summary.json (2 rounds in metrics.csv)" in err and "none of the 1 run folder(s) can be reported" in err
    assert not (tmp_path / "r").exists()
