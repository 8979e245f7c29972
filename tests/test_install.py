"""The built wheel is a working fedbench outside the checkout: ``conf/`` ships inside the package, the console scripts
exist, and ``fedbench rounds=1`` runs in a fresh virtual environment from an empty folder."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT


def _uv() -> str:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not on PATH (pip install uv)")
    return uv


@pytest.mark.slow
def test_the_wheel_installs_into_a_fresh_venv_and_runs_outside_the_checkout(tmp_path):
    uv = _uv()
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "work"
    work.mkdir()
    run = lambda *args, **kw: subprocess.run(args, capture_output=True, text=True, timeout=1200, **kw)  # noqa: E731
    built = run(uv, "build", "--wheel", "-o", str(dist), cwd=ROOT)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(dist.glob("fedbench-*.whl"))
    # the locked versions (what `uv sync` installs), without the dev group, then the wheel itself
    reqs = run(uv, "export", "--frozen", "--no-dev", "--no-emit-project", "--no-hashes", "-o", str(tmp_path / "req.txt"),
               cwd=ROOT)
    assert reqs.returncode == 0, reqs.stderr[-2000:]
    assert run(uv, "venv", str(venv), "--python", sys.executable).returncode == 0
    python = venv / "bin" / "python"
    installed = run(uv, "pip", "install", "--python", str(python), "-r", str(tmp_path / "req.txt"), str(wheel))
    assert installed.returncode == 0, installed.stderr[-2000:]

    fedbench = venv / "bin" / "fedbench"
    assert (venv / "bin" / "fedbench-report").exists() and (venv / "bin" / "fedbench-hpo").exists()
    done = run(str(fedbench), "rounds=1", "num_clients=4", "local_epochs=1", f"hydra.run.dir={work / 'run'}", cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((work / "run" / "summary.json").read_text())
    assert summary["rounds_completed"] == 1 and summary["config"]["choices"]["algorithm"] == "fedavg"
    assert (work / "run" / "fedbench.log").exists()  # the job's log is named after the command, not __main__
    assert not Path(summary["provenance"]["command"].split()[0]).is_absolute()

    helped = run(str(fedbench), "--help", cwd=work)
    assert helped.returncode == 0 and re.search(r"\n  algorithm: [a-z_, ]*fedavg\*", helped.stdout) and "\n  lr: 0.1" in helped.stdout
    refused = run(str(fedbench), "lr=abc", cwd=work)
    assert refused.returncode == 2 and refused.stderr.startswith("fedbench: invalid configuration: lr must be")
