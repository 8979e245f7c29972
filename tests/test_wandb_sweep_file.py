"""The W&B sweep file in the docs stays a valid fedbench command line: every value of every parameter, with the
file's fixed arguments, passes fedbench's command-line checks and composes (without running anything)."""

import itertools

import pytest
import yaml

from fedbench.precheck import precheck
from tests.conftest import ROOT

SWEEP = ROOT / "docs" / "how-to" / "wandb-sweep.yaml"


def _values(spec: dict) -> list:
    if "values" in spec:
        return list(spec["values"])
    return [spec["min"], spec["max"]]


def _commands() -> list[list[str]]:
    sweep = yaml.safe_load(SWEEP.read_text())
    command = sweep["command"]
    assert command[command.index("fedbench") - 1] == "run" and "${args_no_hyphens}" in command
    fixed = [a for a in command[command.index("fedbench") + 1:] if not a.startswith("${")]
    names = list(sweep["parameters"])
    grid = itertools.product(*(_values(sweep["parameters"][n]) for n in names))
    return [[*fixed, *(f"{n}={v}" for n, v in zip(names, values))] for values in grid]


@pytest.mark.parametrize("argv", _commands(), ids=lambda a: " ".join(a[-3:]))
def test_every_sweep_command_passes_fedbench_s_checks(argv):
    precheck(argv)


def test_the_sweep_optimises_a_field_the_runs_log():
    sweep = yaml.safe_load(SWEEP.read_text())
    assert sweep["program"] == "fedbench" and sweep["metric"]["name"] in ("best_accuracy", "final_accuracy")
