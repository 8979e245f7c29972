"""``run(cfg)``: one experiment end to end, whatever runs it.

``run`` checks the flat knobs, chooses the torch threads, takes the run folder's lock, forks the local ranks a
``backend.workers=N`` asks for, and calls the runner: the backend's own when it declares one (``backend=fedml``:
FedML's simulators run the whole experiment), else the ``paradigm`` group's (the federated round loop of
:mod:`fedbench.federated`, a ``lightning.Trainer`` baseline, the pipeline). Tests call ``run`` directly with a
composed config. Bad config raises ConfigError before any training and before anything on disk is touched.
"""

from __future__ import annotations

import os

from omegaconf import DictConfig, OmegaConf

from fedbench import launch
from fedbench.allocator import DEFAULT as DEFAULT_ALLOCATOR, apply_allocator
from fedbench.backends.base import declared
from fedbench.backends.ddp import rank_and_world
from fedbench.device import DEFAULT, check_device
from fedbench.federated import result_from_disk
from fedbench.parts import build_part
from fedbench.runfolder import RunFolder, RunResult, locked
from fedbench.schema import check_tree
from fedbench.threads import apply_threads, choose_threads
from fedbench.validate import validate_knobs

__all__ = ["RunResult", "run"]


def run(cfg: DictConfig) -> RunResult:
    """Run one experiment end to end (or continue it from a checkpoint, or skip it when it already finished)."""
    validate_knobs(cfg)
    check_device(cfg.get("device", DEFAULT))  # the named device exists on this machine
    check_tree(cfg.logger, "logger")  # built inside the run folder: checked before it is touched
    check_tree(cfg.get("callbacks") or OmegaConf.create({}), "callbacks")
    capabilities = declared(cfg.backend)
    if capabilities.precheck is not None:  # a runner backend's refusals, before the run folder exists
        capabilities.precheck(cfg)
    own = capabilities.runner is not None  # such a backend starts its own processes: no forked ranks here
    processes, configured = (0, None) if own else launch.plan(cfg.backend)
    # the user's count (backend.threads, OMP_NUM_THREADS, torch.set_num_threads) or the CPUs this process may use,
    # shared among this machine's ranks
    threads = None if own else choose_threads(configured, processes or None)
    if os.environ.get("FEDBENCH_FORKED"):  # a forked rank: the parent holds the folder's lock
        return _run_here(cfg, threads)
    if cfg.get("precheck"):  # a paradigm's own checks (e.g. the pipeline's stages), before any process starts
        build_part(cfg.precheck)(cfg)
    if rank_and_world()[0] == 0:
        RunFolder(cfg).check_records()  # a damaged record is refused before the lock file is written
    with locked(cfg, enabled=rank_and_world()[0] == 0):
        if processes:  # backend.workers=N without a launcher: fork N ranks that each run this config
            launch.spawn(processes, threads, run, cfg)
            return result_from_disk(cfg)
        return _run_here(cfg, threads)


def _run_here(cfg: DictConfig, threads: tuple[int, str] | None) -> RunResult:
    if threads:
        apply_threads(*threads)
    apply_allocator(cfg.get("allocator", DEFAULT_ALLOCATOR))
    runner = declared(cfg.backend).runner
    return runner(cfg) if runner is not None else build_part(cfg.runner)(cfg)
