"""The report's Robustness and Privacy sections: present only for such runs, numbers equal to the run
folders' summaries, figures embedded."""

import json

import pytest

from fedbench.report.__main__ import main as report
from tests.test_report import PNG_MAGIC, _md_rows, _sweep


@pytest.mark.slow
def test_robustness_and_privacy_sections(tmp_path):
    sweep = _sweep(tmp_path, "attack=none,sign_flip", "aggregator=mean,median", "rounds=2", "local_epochs=1",
                   "checkpoint_every=0")
    out = tmp_path / "report"
    assert report([str(sweep), "--out", str(out)]) == 0
    text = (out / "systems_report.md").read_text()
    assert "\n## Robustness\n" in text and "\n## Privacy\n" not in text
    assert (out / "robustness.png").read_bytes()[:8] == PNG_MAGIC and "](robustness.png)" in text
    acc = {}
    for path in sweep.glob("*/summary.json"):
        s = json.loads(path.read_text())
        acc[(s.get("attack", "none"), s["aggregator"])] = s["final_accuracy"]
    rows = _md_rows(text, "attack \\ aggregator")
    assert [r[0] for r in rows] == ["none", "sign_flip"]
    for row in rows:
        assert float(row[1]) == pytest.approx(acc[(row[0], "mean")], abs=1e-4)
        assert float(row[2]) == pytest.approx(acc[(row[0], "median")], abs=1e-4)

    sweep = _sweep(tmp_path / "p", "privacy=none,dp_fedavg", "rounds=2", "local_epochs=1", "checkpoint_every=0")
    out = tmp_path / "report_p"
    assert report([str(sweep), "--out", str(out)]) == 0
    text = (out / "systems_report.md").read_text()
    assert "\n## Privacy\n" in text and "\n## Robustness\n" not in text and "](accuracy_vs_epsilon.png)" in text
    summaries = [json.loads(p.read_text()) for p in sweep.glob("*/summary.json")]
    dp = next(s for s in summaries if s.get("privacy") == "dp_fedavg")
    rows = {r[1]: r for r in _md_rows(text, "group | mechanism")}
    assert float(rows["dp_fedavg"][4]) == pytest.approx(dp["epsilon"], rel=1e-3)
    assert float(rows["dp_fedavg"][-1]) == pytest.approx(dp["final_accuracy"], abs=1e-4)
    assert rows["none"][4] == "-"
