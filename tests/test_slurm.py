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
from pathlib import Path

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
def test_a_grid_over_backends_runs_fedml_through_submitit_slurm_and_skips_finished_jobs(slurm_cluster, tmp_path):
    from fedbench.backends.fedml import environment

    try:
        environment.ensure()  # built once here; the SLURM jobs reuse it
    except environment.FedMLEnvironmentError as err:
        pytest.skip(f"FedML's environment cannot be built here: {err}")
    args = ["-m", "backend=inprocess,fedml", "hydra/launcher=submitit_slurm", "rounds=2", "local_epochs=1",
            "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=4", "hydra.launcher.timeout_min=10",
            f"hydra.sweep.dir={tmp_path}"]
    proc = _cli(*args, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-4000:]
    summaries = {s["backend"]: s for s in (json.loads(p.read_text()) for p in tmp_path.glob("*/summary.json"))}
    assert sorted(summaries) == ["fedml", "inprocess"]
    assert summaries["fedml"]["rounds_completed"] == 2 and summaries["fedml"]["fedml"]["mode"] == "sp"
    assert abs(summaries["fedml"]["final_accuracy"] - summaries["inprocess"]["final_accuracy"]) < 0.1
    again = _cli(*args, cwd=ROOT)  # the same grid again: both jobs are finished and skipped
    assert again.returncode == 0, again.stderr[-4000:]
    logs = "".join(p.read_text(errors="replace") for p in [*tmp_path.glob("*/*.log"), *tmp_path.glob(".submitit/*/*")]
                   if p.is_file() and p.suffix in (".log", ".out", ".err"))
    assert logs.count("already finished 2 rounds; skipping") >= 2  # the FedML job and the in-process one


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


def _rows(path):
    import csv

    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def _submit_pids():
    """The python processes running submitit jobs (not the srun clients whose command line names them too)."""
    out = subprocess.run(["pgrep", "-f", "submitit.core._submit"], capture_output=True, text=True).stdout
    pids = []
    for pid in (int(p) for p in out.split()):
        try:
            argv0 = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")[0]
        except OSError:
            continue
        if os.path.basename(argv0).startswith(b"python"):
            pids.append(pid)
    return pids


def _environ(pid):
    try:
        return open(f"/proc/{pid}/environ", "rb").read()
    except OSError:  # gone in the meantime
        return b""


def _kill(pid):
    import signal

    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _job_dirs(sweep):
    folder = sweep / ".submitit"
    return sorted(d for d in folder.iterdir() if re.fullmatch(r"\d+_\d+", d.name)) if folder.is_dir() else []


@pytest.mark.slurm
@pytest.mark.slow
def test_requeued_and_killed_array_tasks_continue_from_their_checkpoints(slurm_cluster, tmp_path):
    """Case 10 of the run-integrity issue: a running array task requeued by SLURM (`scontrol requeue`, as on
    preemption) and one whose process is SIGKILLed mid-round and then requeued (as after a node failure)
    each continue from their last checkpoint when SLURM restarts them; the final records equal an
    uninterrupted run's."""
    from fedbench.run import run as run_inprocess
    from tests.conftest import compose_config

    # ~0.2 s a round on one thread: each task is caught mid-run however far apart SLURM starts the two
    args = ["rounds=40", "local_epochs=20", "checkpoint_every=1"]
    sweep = tmp_path / "sweep"
    env = {**os.environ, "HYDRA_FULL_ERROR": "0"}
    parent = subprocess.Popen([sys.executable, "-m", "fedbench", "-m", "seed=0,1", *args, "hydra/launcher=submitit_slurm",
                               "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2",
                               "hydra.launcher.timeout_min=20", f"hydra.sweep.dir={sweep}"],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def running(task: int) -> tuple[Path, int, list[int]]:
        """Wait until array task `task` (seed=task) has written a few rounds; its folder, rounds so far and pids."""
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            found = [d for d in sweep.glob(f"*seed={task}") if d.is_dir()] if sweep.is_dir() else []
            if found and len(_rows(found[0] / "metrics.csv")) >= 4:
                pids = [pid for pid in _submit_pids() if f"SLURM_ARRAY_TASK_ID={task}".encode() in _environ(pid)]
                assert pids, f"task {task}'s processes were not found"
                return found[0], len(_rows(found[0] / "metrics.csv")), pids
            time.sleep(0.2)
        raise AssertionError(f"task {task} did not start: {parent.stderr.read() if parent.poll() is not None else ''}")

    try:
        before, folders = {}, {}
        # task 0: requeued while running, as on preemption: SIGTERM (which submitit bypasses), then the kill
        # (SLURM's SIGKILL after KillWait; sent here at once, since this cluster's linuxproc tracking may miss
        # the process under srun)
        folder, before[0], pids = running(0)
        folders[folder.name] = folder
        jobs = _job_dirs(sweep)
        assert jobs
        array = jobs[0].name.split("_")[0]
        subprocess.run(["scontrol", "requeue", f"{array}_0"], check=True, capture_output=True)
        for pid in pids:
            _kill(pid)
        # task 1: its process killed mid-round, then the job requeued, as after a node failure
        folder, before[1], pids = running(1)
        folders[folder.name] = folder
        for pid in pids:
            _kill(pid)
        subprocess.run(["scontrol", "requeue", f"{array}_1"], capture_output=True)
        out, err = parent.communicate(timeout=600)
    finally:
        if parent.poll() is None:
            parent.kill()
    assert parent.returncode == 0, err[-4000:]
    assert len(folders) == 2 and all(n < 40 for n in before.values()), before  # both were killed mid-run
    for name, folder in folders.items():
        seed = name.rsplit("=", 1)[1]
        # the array tasks have one CPU each (cpus_per_task=1), so they train with one torch thread
        reference = run_inprocess(compose_config([*args, f"seed={seed}", "backend.threads=1"], tmp_path / f"ref{seed}"))
        rows = _rows(folder / "metrics.csv")
        assert [r["round"] for r in rows] == [str(i) for i in range(1, 41)]  # each round once, in order
        for key in ("test_accuracy", "train_loss", "bytes_up"):
            assert [float(r[key]) for r in rows] == pytest.approx([r[key] for r in reference.rows], rel=1e-12), key
        assert json.loads((folder / "status.json").read_text())["status"] == "finished"
        task = name.split("_", 1)[0]  # the sweep's job number = the array task id
        logs = " ".join(f.read_text(errors="replace") for f in [*folder.glob("*.log"), *sweep.glob(f".submitit/*_{task}/*")]
                        if f.is_file() and f.suffix in (".log", ".out", ".err"))
        assert "(resuming after round" in logs, f"{name} did not resume from a checkpoint"
    # SLURM really restarted them: the accounting database knows more than one attempt of each task
    sacct = subprocess.run(["sacct", "-n", "-D", "-j", array, "-o", "JobID%20,State"], capture_output=True, text=True)
    assert sacct.stdout.count("REQUEUED") + sacct.stdout.count("FAILED") + sacct.stdout.count("CANCELLED") >= 1, sacct.stdout


@pytest.mark.slurm
@pytest.mark.slow
def test_hpo_workers_run_as_one_slurm_array_sharing_the_study(slurm_cluster, tmp_path):
    import optuna

    proc = subprocess.run([sys.executable, "-m", "fedbench.hpo", "+hpo=fedavg_lr_fraction", "hydra/launcher=submitit_slurm",
                           "hpo.workers=2", "hpo.n_trials=6", "hpo.pruner=none", "rounds=6", "local_epochs=1",
                           "hydra.launcher.cpus_per_task=1", "hydra.launcher.mem_gb=2", "hydra.launcher.timeout_min=10",
                           f"hpo.dir={tmp_path}"], cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(tmp_path / "journal.log")))
    trials = optuna.load_study(study_name=tmp_path.name, storage=storage).trials
    assert 6 <= len(trials) <= 7 and all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert len({t.user_attrs["run_dir"] for t in trials}) == len(trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2, [t.user_attrs["worker"] for t in trials]
    # one array job of two tasks: submitit's per-task folders <array>_<task>
    tasks = sorted(d.name for d in (tmp_path / ".submitit").iterdir() if re.fullmatch(r"\d+_\d+", d.name))
    assert len(tasks) == 2 and len({t.split("_")[0] for t in tasks}) == 1, tasks
    assert (tmp_path / "best.yaml").exists() and (tmp_path / "trials.csv").exists()
