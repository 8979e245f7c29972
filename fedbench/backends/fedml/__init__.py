"""``backend=fedml``: FedML 0.9.6's own simulators (single process, MPI) run fedbench's experiment in an
isolated environment (:mod:`.environment`); :mod:`.runner` is the entry point, :mod:`.translate` the
config mapping and its refusals, :mod:`.handoff` the files FedML reads, ``env/driver.py`` the script that
runs inside FedML's environment."""

from __future__ import annotations


from fedbench.backends.base import Backend, BackendCapabilities, declares


def _run_fedml(cfg):  # noqa: ANN001, ANN202 - the runner, imported when it runs
    from fedbench.backends.fedml.runner import train_fedml

    return train_fedml(cfg)


def _check(cfg):  # noqa: ANN001, ANN202 - its refusals, before run() takes the run folder's lock
    from fedbench.backends.fedml.translate import check

    check(cfg)


CAPABILITIES = BackendCapabilities(devices=("cpu",), runner=_run_fedml, precheck=_check)


def _not_here(job, clients):  # noqa: ANN001, ANN202
    raise RuntimeError("backend=fedml runs the whole experiment through FedML (its runner); it maps no client jobs")


@declares(CAPABILITIES)
def fedml(mode: str = "sp", workers: int | None = None, threads: int | None = None, env_dir: str | None = None) -> Backend:
    """FedML 0.9.6's simulators (:mod:`.runner` runs the experiment; :mod:`.translate` checks every option).

    Args:
        mode: ``sp`` (single process) | ``mpi`` (mpirun) | ``nccl`` (refused: not wired).
        workers: ``mode=mpi``: client processes (null or the clients per round).
        threads: torch threads per FedML process (null: torch's default with sp, 1 with mpi).
        env_dir: FedML's environment (null: ``$FEDBENCH_FEDML_ENV`` or the cache).
    """
    return Backend("fedml", _not_here, capabilities=CAPABILITIES)
