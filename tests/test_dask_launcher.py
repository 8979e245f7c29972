"""``hydra/launcher=dask`` without a cluster: what a job asks of its worker, where it may run, and the fence that
ends an attempt which is no longer the job's only one (the end-to-end runs are in tests/test_dask_cluster.py)."""

import threading
import types

import pytest
from distributed.core import Status

from fedbench.errors import ConfigError
from hydra_plugins.fedbench_dask_launcher.cluster import check_placement, job_resources, unplaceable
from hydra_plugins.fedbench_dask_launcher.job import Fence, append_record, latest_attempt, record_path, worker_check


@pytest.mark.parametrize("device, expected", [
    ("cpu", {"cpu": 1.0}), ("auto", {"cpu": 1.0}), ("cuda", {"cpu": 1.0, "cuda": 1.0}),
    ("cuda:1", {"cpu": 1.0, "cuda": 1.0}), ("mps", {"cpu": 1.0, "mps": 1.0}), (None, {"cpu": 1.0}),
])
def test_a_job_asks_for_its_device_kind_on_top_of_the_base_resources(device, expected):
    assert job_resources({"cpu": 1}, device, True) == expected


def test_device_resources_off_and_zero_counts():
    assert job_resources({"cpu": 1, "cuda": 0}, "cuda", False) == {"cpu": 1.0}
    assert job_resources({"cpu": 2, "cuda": 2}, "cuda", True) == {"cpu": 2.0, "cuda": 2.0}  # never lowered


def test_jobs_that_no_worker_can_run_are_found():
    workers = {"tcp://a": {"resources": {"cpu": 1}}, "tcp://b": {"resources": {"cpu": 1, "cuda": 1}}}
    needs = [{"cpu": 1}, {"cpu": 1, "cuda": 1}, {"cpu": 1, "mps": 1}, {"cpu": 2}]
    assert unplaceable(needs, workers) == [2, 3]
    assert unplaceable([{"cpu": 1}], {}) == [0]


def _client(workers):
    return types.SimpleNamespace(scheduler_info=lambda n_workers=-1: {"workers": workers})


def test_a_local_cluster_refuses_jobs_it_cannot_place_and_a_scheduler_warns(caplog):
    client = _client({"tcp://a": {"resources": {"cpu": 1.0}}})
    with pytest.raises(ConfigError) as err:
        check_placement(client, [{"cpu": 1.0}, {"cpu": 1.0, "cuda": 1.0}], local=True)
    assert str(err.value).startswith("hydra.launcher.local.resources must be enough for job(s) [1], which need "
                                     "{'cpu': 1.0, 'cuda': 1.0}")
    assert "(got [{'cpu': 1.0}])" in str(err.value)
    check_placement(client, [{"cpu": 1.0, "cuda": 1.0}], local=False)  # a worker may still join: warn only
    assert "no connected worker offers that" in caplog.text


def _worker(state="executing"):
    task = types.SimpleNamespace(state=state)
    return types.SimpleNamespace(status=Status.running, address="tcp://w", state=types.SimpleNamespace(tasks={"k": task}))


def test_the_fence_check_names_each_way_an_attempt_goes_stale(tmp_path):
    record = record_path(tmp_path, 3)
    append_record(record, {"event": "start", "attempt": "mine"})
    worker = _worker()
    check = worker_check(worker, "k", record, "mine")
    assert check() is None
    worker.state.tasks["k"].state = "long-running"
    assert check() is None
    worker.state.tasks["k"].state = "cancelled"  # the launching command went away
    assert "took task k back (cancelled)" in check()
    del worker.state.tasks["k"]
    assert "took task k back (forgotten)" in check()
    worker.state.tasks["k"] = types.SimpleNamespace(state="executing")
    append_record(record, {"event": "start", "attempt": "newer"})  # the job was handed to another worker
    assert check() == "attempt newer took the job over"
    worker.status = Status.closing  # e.g. a laptop woke up: its scheduler had removed it
    assert check() == "worker tcp://w lost its scheduler"


def test_the_record_survives_a_torn_last_line(tmp_path):
    record = record_path(tmp_path, 0)
    append_record(record, {"event": "start", "attempt": "a"})
    with record.open("a") as f:
        f.write('{"event": "start", "attem')  # a writer died mid-line
    assert latest_attempt(record) == "a"
    assert latest_attempt(tmp_path / "missing.jsonl") is None


def test_the_fence_reports_the_first_stale_reason_once_and_stops_with_the_job():
    calls, stale, reported = [], threading.Event(), []

    def check():
        calls.append(1)
        return "gone" if len(calls) >= 3 else None

    with Fence(check, 0.001, on_stale=lambda reason: (reported.append(reason), stale.set())):
        assert stale.wait(10)
    assert reported == ["gone"] and len(calls) == 3  # the thread ended after reporting
    quiet = []
    with Fence(lambda: quiet.append(1), 0.001, on_stale=lambda reason: pytest.fail(reason)):
        pass
    count = len(quiet)
    threading.Event().wait(0.01)
    assert len(quiet) == count  # stopped on exit: no check after the job ended


def test_a_taken_over_job_waits_for_the_previous_attempt_to_release_the_run_folder(tmp_path):
    from fedbench.runlock import run_folder_lock
    from hydra_plugins.fedbench_dask_launcher.job import wait_for_folder

    with run_folder_lock(tmp_path):  # the previous attempt, asleep or not yet ended by its fence
        with pytest.raises(ConfigError, match="is in use by another run"):
            wait_for_folder(tmp_path, timeout=0.05, poll=0.01)
    held, released = threading.Event(), threading.Event()

    def hold_then_release():
        with run_folder_lock(tmp_path):
            held.set()
            released.wait(5)

    thread = threading.Thread(target=hold_then_release)
    thread.start()
    assert held.wait(5)
    threading.Timer(0.2, released.set).start()
    wait_for_folder(tmp_path, timeout=30, poll=0.01)  # returns once the holder lets go
    assert released.is_set()
    thread.join()


def test_a_worker_with_more_than_one_thread_is_refused_before_the_job_starts(tmp_path):
    from distributed import Client, LocalCluster

    from fedbench.errors import SetupError
    from hydra_plugins.fedbench_dask_launcher.job import JobSpec, run_dask_job

    spec = JobSpec(None, None, None, {}, str(tmp_path / "job"), str(record_path(tmp_path, 0)), 0.5, 1.0)
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        with pytest.raises(SetupError, match=r"start workers with --nthreads 1 \(worker .* has 2\)"):
            client.submit(run_dask_job, spec, pure=False, retries=0).result()
    assert not record_path(tmp_path, 0).exists() and not (tmp_path / "job").exists()
