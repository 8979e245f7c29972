"""The headline grid on a real single-node SLURM cluster (slurmctld + slurmd + slurmdbd on localhost).

Started by tests/slurm/slurm-up.sh (installs Debian's slurm-wlm, munge, slurmdbd and MariaDB when
missing) and stopped afterwards. Needs root; skipped with the reason elsewhere.
"""

import json
import re
import os
import shutil
import subprocess
import sys
import time

import pytest

from tests.conftest import ROOT
from tests.test_end_to_end import _cli

SCRIPTS = ROOT / "tests" / "slurm"


def _why_not() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return "the local SLURM cluster needs root (it starts munged, slurmctld, slurmd, slurmdbd)"
    if not shutil.which("slurmctld") and not shutil.which("apt-get"):
        return "slurm-wlm is not installed and apt-get is not available to install it"
    return None


@pytest.fixture(scope="module")
def slurm_cluster():
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    env = {**os.environ, "SLURM_ACCOUNTING": "1"}
    up = subprocess.run(["bash", str(SCRIPTS / "slurm-up.sh")], env=env, capture_output=True, text=True, timeout=900)
    assert up.returncode == 0, f"slurm-up.sh failed:\n{up.stdout[-2000:]}\n{up.stderr[-2000:]}"
    yield
    subprocess.run(["bash", str(SCRIPTS / "slurm-down.sh")], capture_output=True, timeout=300)


@pytest.mark.slurm
@pytest.mark.slow
def test_grid_runs_through_submitit_slurm(slurm_cluster, tmp_path):
    proc = _cli("-m", "algorithm=fedavg,scaffold", "hydra/launcher=submitit_slurm", "rounds=3",
                "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=10",
                f"hydra.sweep.dir={tmp_path}", cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summaries = [json.loads(p.read_text()) for p in sorted(tmp_path.glob("*/summary.json"))]
    assert sorted(s["algorithm"] for s in summaries) == ["fedavg", "scaffold"]
    assert all(s["rounds_completed"] == 3 and s["final_accuracy"] > 0.5 for s in summaries)
    # the jobs really went through SLURM: submitit's per-job folders and the accounting database know them
    job_dirs = [d for d in (tmp_path / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", d.name)]  # <array>_<task>
    assert len(job_dirs) == 2, "expected one submitit folder per job"
    job_id = job_dirs[0].name.split("_")[0]
    # slurmctld reports job ends to slurmdbd asynchronously: a task can still read RUNNING for a moment
    deadline = time.monotonic() + 60
    while True:
        sacct = subprocess.run(["sacct", "-n", "-X", "-j", job_id, "-o", "JobName%40,State"], capture_output=True, text=True)
        states = [line.split()[-1] for line in sacct.stdout.splitlines() if line.strip()]
        if (states and all(s == "COMPLETED" for s in states)) or time.monotonic() > deadline:
            break
        time.sleep(2)
    assert "fedbench" in sacct.stdout and states and all(s == "COMPLETED" for s in states), sacct.stdout


@pytest.mark.slurm
@pytest.mark.slow
def test_srun_two_tasks_match_inprocess(slurm_cluster, tmp_path):
    """backend=ddp with rank/world from SLURM_PROCID/SLURM_NTASKS (srun -n 2) equals in-process."""
    from tests.test_ddp import assert_matches_inprocess

    args = ["algorithm=scaffold", "rounds=3", "num_clients=10", "client_fraction=0.5", "partitioner=dirichlet"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_PORT": str(29600 + os.getpid() % 300)}
    for key in ("RANK", "WORLD_SIZE"):
        env.pop(key, None)
    proc = subprocess.run(["srun", "-n", "2", "--cpus-per-task", "1", "-t", "10", sys.executable, "-m", "fedbench",
                           "backend=ddp", *args, f"hydra.run.dir={tmp_path / 'srun'}"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert_matches_inprocess(args, tmp_path / "srun", tmp_path / "inprocess")


@pytest.mark.slurm
@pytest.mark.slow
def test_scaling_studies_run_on_slurm(slurm_cluster, tmp_path):
    """+study=strong_scaling through submitit_slurm: each job forks its ranks in its allocation (weak_scaling
    differs only in its config, whose every job is composed in test_configs)."""
    for study in ("strong_scaling",):
        proc = _cli("-m", f"+study={study}", "hydra/launcher=submitit_slurm", "rounds=2", "local_epochs=1",
                    "hydra.launcher.cpus_per_task=2", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=10",
                    f"hydra.sweep.dir={tmp_path / study}", cwd=ROOT)
        assert proc.returncode == 0, proc.stderr[-4000:]
        summaries = [json.loads(p.read_text()) for p in sorted((tmp_path / study).glob("*/summary.json"))]
        assert sorted(s["hardware"]["world_size"] for s in summaries) == [1, 2]
        assert all(s["rounds_completed"] == 2 for s in summaries)
    from fedbench.report.__main__ import main as report

    assert report([str(tmp_path / "strong_scaling"), "--out", str(tmp_path / "r")]) == 0
    text = (tmp_path / "r" / "systems_report.md").read_text()
    assert "measured speed-up" in text and (tmp_path / "r" / "strong_scaling.png").exists()
