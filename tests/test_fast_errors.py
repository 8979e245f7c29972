"""A typo is answered before torch, Lightning or pandas are imported (about half a second instead of the 15-120 s
those imports take on a loaded 2-core machine), in one line, with a non-zero exit status."""

import json
import subprocess
import sys

import pytest

from tests.conftest import ROOT

PROBE = """
import json, sys
from fedbench.cli import main
try:
    main(sys.argv[1:])
    code = 0
except SystemExit as stop:
    code = stop.code
heavy = sorted(m for m in ("torch", "lightning", "pandas", "matplotlib", "sklearn") if m in sys.modules)
print(json.dumps({"code": code, "heavy": heavy}))
"""


@pytest.mark.parametrize("argv,line", [
    (["lr=abc"], "fedbench: invalid configuration: lr must be a number > 0 (got 'abc': a string)"),
    (["client_fraction=2"], "fedbench: invalid configuration: client_fraction must be in (0, 1] (got 2)"),
    (["algorithm=fedavgg"], "fedbench: invalid configuration: algorithm must be one of ['fedavg', "),
    (["rounds=1.5"], "fedbench: invalid configuration: rounds must be an integer >= 1 (got 1.5: not a whole number)"),
])
def test_a_typo_is_refused_without_importing_torch(tmp_path, argv, line):
    proc = subprocess.run([sys.executable, "-c", PROBE, *argv, f"hydra.run.dir={tmp_path / 'run'}"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result == {"code": 2, "heavy": []}, proc.stderr
    assert [ln for ln in proc.stderr.splitlines() if ln.strip()] == [proc.stderr.strip()]  # one line
    assert proc.stderr.startswith(line), proc.stderr
    assert not (tmp_path / "run").exists()


def test_help_lists_the_groups_their_options_and_the_flat_knobs():
    proc = subprocess.run([sys.executable, "-m", "fedbench", "--help"], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "is powered by Hydra" not in text and "Usage: fedbench" in text
    for group in ("algorithm:", "dataset:", "partitioner:", "model:", "topology:", "compressor:", "privacy:"):
        assert f"\n  {group} " in text, group
    assert "fedavg*" in text and "scaffold" in text  # the default starred
    for knob in ("rounds", "num_clients", "client_fraction", "local_epochs", "batch_size", "lr"):
        assert f"\n  {knob}: " in text, knob
    assert "\n  eval.per_client: auto" in text and "\n  network.collective: star" in text  # a block's knobs
    assert "C: share of clients sampled per round" in text  # a knob's comment from conf/config.yaml
    for hidden in ("local.example", "arm", "fedavg_arch", "hpo"):  # groups that are not run options
        assert f"\n  {hidden}:" not in text, hidden
