"""fedbench.report on runs of different code versions: a mixed-provenance warning (stderr and the report), and keys an
older summary lacks are filled with their defaults instead of splitting a group."""

import csv
import json

from fedbench.report.__main__ import main as report
from fedbench.run import run
from tests.conftest import compose_config


def _age(folder, commit: str) -> None:
    """Make a run look written by an older fedbench: another commit, and two options it did not have yet."""
    path = folder / "summary.json"
    summary = json.loads(path.read_text())
    summary["provenance"]["git_commit"], summary["provenance"]["git_dirty"] = commit, False
    del summary["config"]["client_sampling"]  # a flat knob (default in conf/config.yaml: auto)
    del summary["config"]["task"]["scheduler_interval"]  # a part's option (its factory's default: round)
    path.write_text(json.dumps(summary))


def test_mixed_commits_warn_and_missing_keys_do_not_split_groups(tmp_path, capsys):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        result = run(compose_config([f"seed={seed}", "rounds=1", "local_epochs=1"], runs / f"seed{seed}"))
        assert result.summary["provenance"]["uv_lock_sha256"]
    _age(runs / "seed0", "0123456789abcdef0123456789abcdef01234567")
    out = tmp_path / "report"
    assert report([str(runs), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "warning: the 2 runs come from 2 code versions (" in err and "0123456789: 1" in err
    with open(out / "summary_table.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == 1 and int(table[0]["runs"]) == 2  # seeds 0 and 1: one group of replicates
    text = (out / "systems_report.md").read_text()
    assert "**Mixed code versions:**" in text and "`client_sampling`" in text and "`task.scheduler_interval`" in text


def test_one_code_version_gives_no_warning(tmp_path, capsys):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        run(compose_config([f"seed={seed}", "rounds=1", "local_epochs=1"], runs / f"seed{seed}"))
    assert report([str(runs), "--out", str(tmp_path / "report")]) == 0
    assert "code versions" not in capsys.readouterr().err
    assert "Every run was written by code version" in (tmp_path / "report" / "systems_report.md").read_text()
