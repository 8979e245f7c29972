"""``backend=flower``: Flower 1.42's simulation engine (``run_simulation``: a ServerApp with Flower's own strategy,
ClientApps on Ray actors) runs fedbench's experiment in an isolated environment (:mod:`.environment`);
:mod:`.runner` is the entry point, :mod:`.translate` the strategy mapping, its conventions and its refusals,
``env/driver.py`` the script that runs inside Flower's environment."""

from __future__ import annotations

from fedbench.backends.base import Backend, BackendCapabilities, declares


def _run_flower(cfg):  # noqa: ANN001, ANN202 - the runner, imported when it runs
    from fedbench.backends.flower.runner import train_flower

    return train_flower(cfg)


def _check(cfg):  # noqa: ANN001, ANN202 - its refusals, before run() takes the run folder's lock
    from fedbench.backends.flower.translate import check

    check(cfg)


CAPABILITIES = BackendCapabilities(devices=("cpu", "cuda"), runner=_run_flower, precheck=_check)


def _not_here(job, clients):  # noqa: ANN001, ANN202
    raise RuntimeError("backend=flower runs the whole experiment through Flower (its runner); it maps no client jobs")


@declares(CAPABILITIES)
def flower(client_cpus: float = 1.0, client_gpus: float = 0.0, cpus: int | None = None, gpus: int | None = None,
           threads: int | None = 1, env_dir: str | None = None) -> Backend:
    """Flower 1.42's simulation engine (:mod:`.runner` runs the experiment; :mod:`.translate` checks every option).

    Args:
        client_cpus: Ray CPUs per client actor (Flower's ``client_resources.num_cpus``).
        client_gpus: GPUs per client actor (``client_resources.num_gpus``; a fraction shares a GPU); > 0 trains the
            clients on CUDA.
        cpus: CPUs Ray may use in all (``init_args.num_cpus``; null: the CPUs this process may use).
        gpus: GPUs Ray may use (``init_args.num_gpus``; null: Ray's detection).
        threads: torch threads per client actor and in the ServerApp.
        env_dir: Flower's environment (null: ``$FEDBENCH_FLOWER_ENV`` or the cache).
    """
    return Backend("flower", _not_here, capabilities=CAPABILITIES)
