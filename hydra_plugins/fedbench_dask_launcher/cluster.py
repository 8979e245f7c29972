"""Connecting to a Dask scheduler (or starting a LocalCluster) and matching jobs' resource needs to workers.

Resources are Dask's worker resources: abstract counts a worker advertises (``dask worker ... --resources
"cpu=1 cuda=1"``) and a task asks for (``client.submit(..., resources={"cuda": 1})``); the scheduler places a
task only on a worker with enough of each, and runs at most as many tasks there at once as the counts allow.
"""

import logging
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

log = logging.getLogger(__name__)
DEVICE_RESOURCES = ("cuda", "mps")  # a job's device kind that also names the resource it asks for


def job_resources(base: Mapping[str, float], device: Any, device_resources: bool) -> dict[str, float]:
    """What one job asks of its worker: ``base`` (zero counts dropped), plus ``cuda: 1`` for ``device=cuda`` or
    ``cuda:N`` and ``mps: 1`` for ``device=mps`` when ``device_resources`` (``auto`` and ``cpu`` add nothing)."""
    needs = {str(k): float(v) for k, v in base.items() if v}
    kind = device.split(":", 1)[0] if isinstance(device, str) else None
    if device_resources and kind in DEVICE_RESOURCES:
        needs[kind] = max(needs.get(kind, 0.0), 1.0)
    return needs


def fits(needs: Mapping[str, float], offered: Mapping[str, float]) -> bool:
    """A worker offering ``offered`` can run a task needing ``needs``."""
    return all(offered.get(k, 0.0) >= v for k, v in needs.items())


def unplaceable(needs: list[dict[str, float]], workers: Mapping[str, Any]) -> list[int]:
    """Indices of the needs that no connected worker (``scheduler_info()["workers"]``) can meet."""
    offers = [w.get("resources") or {} for w in workers.values()]
    return [i for i, need in enumerate(needs) if not any(fits(need, offer) for offer in offers)]


def local_resources(resources: Mapping[str, float] | None) -> dict[str, float]:
    """Each LocalCluster worker's resources: as given, or ``cpu: 1`` plus ``cuda: 1`` / ``mps: 1`` when this
    machine has a CUDA GPU / Apple MPS (local workers then share that one device)."""
    if resources is not None:
        return {str(k): float(v) for k, v in resources.items()}
    from fedbench.device import cuda_count, mps_available

    found = {"cpu": 1.0}
    if cuda_count() > 0:
        found["cuda"] = 1.0
    if mps_available():
        found["mps"] = 1.0
    return found


@contextmanager
def open_client(params: Mapping[str, Any]) -> Iterator[tuple[Any, bool]]:
    """A ``distributed.Client`` for the launcher's options and whether its cluster is local (started here for
    this sweep, closed after it). A LocalCluster's workers run one thread each, are not daemons (a job may start
    processes: ``backend.workers``, DataLoader workers) and a job may lose ``allowed_failures`` workers."""
    import dask
    from distributed import Client, LocalCluster

    timeout = params.get("connect_timeout_s", 30.0)
    if params.get("address") or params.get("scheduler_file"):
        client = Client(params.get("address"), scheduler_file=params.get("scheduler_file"), timeout=timeout)
        log.info("Dask scheduler %s: %d worker(s) connected", client.scheduler.address, len(_workers(client)))
        try:
            yield client, False
        finally:
            client.close()
        return
    local = params.get("local") or {}
    settings = {"distributed.scheduler.allowed-failures": params.get("allowed_failures", 3),
                "distributed.worker.daemon": False}
    with dask.config.set(settings):
        resources = local_resources(local.get("resources"))
        with LocalCluster(n_workers=local.get("n_workers", 2), threads_per_worker=1, processes=True,
                          resources=resources, dashboard_address=None) as cluster, Client(cluster, timeout=timeout) as client:
            log.info("Dask LocalCluster: %d worker(s), each offering %s", len(_workers(client)), resources)
            yield client, True


def _workers(client: Any) -> dict[str, Any]:
    return client.scheduler_info(n_workers=-1)["workers"]


def check_placement(client: Any, needs: list[dict[str, float]], local: bool) -> None:
    """Refuse (LocalCluster) or warn about (a scheduler workers may still join) jobs no worker can run."""
    from fedbench.errors import require

    workers = _workers(client)
    missing = unplaceable(needs, workers)
    if not missing:
        return
    offered = [dict(o) for o in sorted({tuple(sorted((w.get("resources") or {}).items())) for w in workers.values()})]
    if local:
        require(False, "hydra.launcher.local.resources", f"enough for job(s) {missing}, which need "
                f"{needs[missing[0]]} (or give those jobs another device, or set hydra.launcher.resources)", offered)
    log.warning("Dask: job(s) %s need %s; no connected worker offers that (workers offer %s); those jobs wait until "
                "one joins (dask worker <address> --nthreads 1 --resources \"cpu=1 cuda=1\")", missing,
                needs[missing[0]], offered or "nothing: none connected")
