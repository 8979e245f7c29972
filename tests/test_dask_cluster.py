"""``hydra/launcher=dask`` end to end: a ``dask scheduler`` and two ``dask worker`` processes on this machine stand
for two machines sharing a folder (each worker tagged with its own resources); one is SIGKILLed mid-job."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from fedbench.run import run
from hydra_plugins.fedbench_dask_launcher.job import read_records, record_path
from tests.conftest import ROOT, compose_config
from tests.test_resume import _checkpoint_round, _params, _rows

DASK = Path(sys.executable).with_name("dask")
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "HYDRA_FULL_ERROR": "1"}


class Cluster:
    """A scheduler and named workers, each in its own process group (a kill takes a worker's nanny with it)."""

    def __init__(self, folder: Path, **env: str) -> None:
        self.folder, self.file, self.workers = folder, folder / "scheduler.json", {}
        self.scheduler = self._start("scheduler", "scheduler", "--scheduler-file", str(self.file), "--port", "0",
                                     "--host", "127.0.0.1", "--no-dashboard", env=env)

    def _start(self, name: str, *args: str, env: dict | None = None) -> subprocess.Popen:
        log = (self.folder / f"{name}.log").open("w")
        return subprocess.Popen([str(DASK), *args], cwd=ROOT, env={**ENV, **(env or {})}, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True)

    def worker(self, name: str, resources: str) -> None:
        self.workers[name] = self._start(name, "worker", "--scheduler-file", str(self.file), "--nthreads", "1",
                                         "--name", name, "--resources", resources, "--no-dashboard",
                                         "--local-directory", str(self.folder / f"dask-{name}"))

    def wait_for_workers(self, n: int) -> dict:
        from distributed import Client

        deadline = time.time() + 120
        while not self.file.exists():
            assert time.time() < deadline and self.scheduler.poll() is None, "the scheduler did not start"
            time.sleep(0.1)
        with Client(scheduler_file=str(self.file), timeout=60) as client:
            client.wait_for_workers(n, timeout=120)
            return {w["name"]: w["resources"] for w in client.scheduler_info(n_workers=-1)["workers"].values()}

    def signal(self, name: str, sig: int) -> None:
        os.killpg(self.workers[name].pid, sig)

    def kill(self, name: str) -> None:
        os.killpg(self.workers[name].pid, signal.SIGKILL)  # the machine dies: nanny, worker and its job at once
        self.workers[name].wait()

    def close(self) -> None:
        for proc in [*self.workers.values(), self.scheduler]:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


@pytest.fixture
def cluster(tmp_path):
    c = Cluster(tmp_path)
    yield c
    c.close()


def _grid(cluster: Cluster, sweep: Path, *args: str) -> subprocess.Popen:
    out = (sweep.parent / f"{sweep.name}.out").open("a")
    return subprocess.Popen([sys.executable, "-m", "fedbench", "-m", *args, "hydra/launcher=dask",
                             f"hydra.launcher.scheduler_file={cluster.file}", f"hydra.sweep.dir={sweep}"],
                            cwd=ROOT, env=ENV, stdout=out, stderr=subprocess.STDOUT)


def _attempts(sweep: Path, num: int) -> tuple[list[dict], list[dict]]:
    events = read_records(record_path(sweep, num))
    return [e for e in events if e["event"] == "start"], [e for e in events if e["event"] == "end"]


def _wait_for_attempt(grid: subprocess.Popen, sweep: Path, jobs: int, ready) -> dict:
    """The first running attempt for which ``ready(attempt)`` holds."""
    deadline = time.time() + 300
    while True:
        assert grid.poll() is None and time.time() < deadline, (sweep.parent / f"{sweep.name}.out").read_text()[-3000:]
        found = next((a for a in _running(sweep, jobs) if ready(a)), None)
        if found:
            return found
        time.sleep(0.01)


def _running(sweep: Path, jobs: int) -> list[dict]:
    """The attempts started and not ended yet."""
    live = []
    for num in range(jobs):
        starts, ends = _attempts(sweep, num)
        ended = {e["attempt"] for e in ends}
        live += [{**s, "num": num} for s in starts if s["attempt"] not in ended]
    return live


ARGS = ["rounds=16", "local_epochs=20", "backend.threads=1"]  # ~0.2 s a round: a job is killed mid-run reliably
SEEDS = "seed=0,1,2,3,4,5"


@pytest.mark.slow
def test_a_killed_worker_s_job_resumes_on_the_other_and_every_job_finishes_once(cluster, tmp_path):
    cluster.worker("laptop", "cpu=1")
    cluster.worker("workstation", "cpu=1 cuda=1")
    assert cluster.wait_for_workers(2) == {"laptop": {"cpu": 1.0}, "workstation": {"cpu": 1.0, "cuda": 1.0}}
    sweep = tmp_path / "sweep"
    grid = _grid(cluster, sweep, SEEDS, *ARGS)
    # the first job whose checkpoint holds round 2 or later, on whichever worker runs it
    victim = _wait_for_attempt(grid, sweep, 6, lambda a: _checkpoint_round(Path(a["folder"])) >= 2)
    cluster.kill(victim["name"])
    killed_at, folder = time.time(), Path(victim["folder"])
    done = _checkpoint_round(folder)
    assert 2 <= done < 16 and not (folder / "summary.json").exists()
    assert grid.wait(timeout=600) == 0, (sweep.parent / "sweep.out").read_text()[-3000:]

    survivor = ({"laptop", "workstation"} - {victim["name"]}).pop()
    for num in range(6):
        starts, ends = _attempts(sweep, num)
        assert len(ends) == 1 and ends[0]["status"] == "COMPLETED"  # finished exactly once
        assert ends[0]["attempt"] == starts[-1]["attempt"]
        if num == victim["num"]:  # the killed attempt, then one on the other worker, after the kill
            assert [s["name"] for s in starts] == [victim["name"], survivor]
            assert starts[1]["time"] > killed_at
        else:
            assert len(starts) == 1
        job = Path(starts[0]["folder"])
        assert [int(r["round"]) for r in _rows(job)] == list(range(1, 17))  # each round once, in order
        assert json.loads((job / "status.json").read_text())["status"] == "finished"
    assert f"resuming after round {done}" in (folder / "fedbench.log").read_text()
    seed = folder.name.rsplit("seed=", 1)[1]
    reference = run(compose_config([*ARGS, f"seed={seed}"], tmp_path / "uninterrupted"))
    assert _rows(folder) == _rows(tmp_path / "uninterrupted")  # every metric but the wall-clock columns
    assert torch.equal(_params(folder), reference.server["params"])

    stamps = {p: p.stat().st_mtime_ns for p in sweep.glob("*/summary.json")}
    again = _grid(cluster, sweep, SEEDS, *ARGS)  # the same grid again: every job is finished and skipped
    assert again.wait(timeout=300) == 0
    assert all("already finished 16 rounds; skipping" in (p.parent / "fedbench.log").read_text() for p in stamps)
    assert {p: p.stat().st_mtime_ns for p in sweep.glob("*/summary.json")} == stamps and len(stamps) == 6


@pytest.mark.slow
def test_jobs_that_need_cuda_run_only_on_the_worker_that_offers_it(cluster, tmp_path):
    cluster.worker("laptop", "cpu=1")
    cluster.worker("gpu-box", "cpu=1 cuda=1")  # a fake tag: this machine has no GPU
    cluster.wait_for_workers(2)
    sweep = tmp_path / "sweep"
    # device=cuda jobs ask for cuda: 1; here they reach the tagged worker and stop there at fedbench's own check
    grid = _grid(cluster, sweep, "device=cpu,cuda", "seed=0,1,2", "rounds=2", "backend.threads=1")
    assert grid.wait(timeout=300) == 3, (sweep.parent / "sweep.out").read_text()[-3000:]  # the 3 cuda jobs failed
    placed = {}
    for num in range(6):
        starts, ends = _attempts(sweep, num)
        assert len(starts) == len(ends) == 1
        folder = Path(starts[0]["folder"])
        placed[folder.name] = starts[0]["name"]
        if "device=cuda" in folder.name:
            assert starts[0]["name"] == "gpu-box" and starts[0]["resources"] == {"cpu": 1.0, "cuda": 1.0}
            failure = json.loads((folder / "failure.json").read_text())["error"]
            assert failure == "device must be cpu or auto on a machine with 0 CUDA GPU(s) (got 'cuda')"
        else:
            assert json.loads((folder / "status.json").read_text())["status"] == "finished"
    assert sum("device=cuda" in name for name in placed) == 3, placed


@pytest.mark.slow
def test_without_an_address_the_grid_runs_on_a_local_cluster(tmp_path):
    sweep = tmp_path / "sweep"
    proc = subprocess.run([sys.executable, "-m", "fedbench", "-m", "seed=0,1", "rounds=2", "backend.threads=1",
                           "hydra/launcher=dask", "hydra.launcher.local.n_workers=1", f"hydra.sweep.dir={sweep}"],
                          cwd=ROOT, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for num in range(2):
        starts, ends = _attempts(sweep, num)
        assert len(starts) == len(ends) == 1 and starts[0]["resources"] == {"cpu": 1.0}
        assert json.loads((Path(starts[0]["folder"]) / "status.json").read_text())["status"] == "finished"


@pytest.mark.slow
def test_a_worker_that_sleeps_past_its_ttl_loses_its_job_and_stops_before_writing_again(tmp_path):
    """A laptop put to sleep mid-job (SIGSTOP) is dropped by the scheduler after worker-ttl; the other worker
    resumes the job from its checkpoint; when the laptop wakes (SIGCONT) its stale attempt ends itself before
    writing anything, and the job's records equal an uninterrupted run's."""
    cluster = Cluster(tmp_path, DASK_DISTRIBUTED__SCHEDULER__WORKER_TTL="3s")
    try:
        cluster.worker("laptop", "cpu=1")
        cluster.worker("workstation", "cpu=1")
        cluster.wait_for_workers(2)
        sweep = tmp_path / "sweep"
        grid = _grid(cluster, sweep, "seed=0,1", *ARGS)
        sleeper = _wait_for_attempt(grid, sweep, 2, lambda a: _checkpoint_round(Path(a["folder"])) >= 2)
        cluster.signal(sleeper["name"], signal.SIGSTOP)
        folder, done = Path(sleeper["folder"]), _checkpoint_round(Path(sleeper["folder"]))
        taker = _wait_for_attempt(grid, sweep, 2, lambda a: a["num"] == sleeper["num"] and a["name"] != sleeper["name"])
        cluster.signal(sleeper["name"], signal.SIGCONT)  # wakes up while the other worker runs its job
        assert grid.wait(timeout=600) == 0, (tmp_path / "sweep.out").read_text()[-3000:]
    finally:
        cluster.close()
    starts, ends = _attempts(sweep, sleeper["num"])
    assert [s["name"] for s in starts] == [sleeper["name"], taker["name"]] and len(ends) == 1
    assert "this attempt is stale" in (tmp_path / f"{sleeper['name']}.log").read_text()
    assert f"resuming after round {done}" in (folder / "fedbench.log").read_text()
    seed = folder.name.rsplit("seed=", 1)[1]
    run(compose_config([*ARGS, f"seed={seed}"], tmp_path / "uninterrupted"))
    assert _rows(folder) == _rows(tmp_path / "uninterrupted")  # each round once: no row from the stale attempt
    assert torch.equal(_params(folder), _params(tmp_path / "uninterrupted"))
