"""``hpo.workers=N``: N workers as one submitit job array (SLURM or local processes) sharing the study.

The launcher is the one the command picked, ``hydra/launcher=submitit_slurm`` (with the site settings of
``conf/local/slurm.yaml``) or ``submitit_local``; its settings are handed to submitit exactly as the
Hydra submitit plugin hands them, so a search's workers get the same resources as a grid's jobs. With
Hydra's default (basic, sequential) launcher, the workers run as local submitit processes.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Callable

from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("fedbench")


def executor_for(launcher: DictConfig | None, folder: Path, workers: int) -> Any:
    """A submitit executor from the composed ``hydra.launcher`` node (local processes for the basic launcher)."""
    import submitit
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    target = str(launcher.get("_target_", "")) if launcher is not None else ""
    cluster = "slurm" if target.endswith("SlurmLauncher") else "local"
    params: dict[str, Any] = {}
    if target.endswith(("SlurmLauncher", "LocalLauncher")):
        node = OmegaConf.masked_copy(launcher, [k for k in launcher if k not in ("_target_", "submitit_folder")])
        params = OmegaConf.to_container(node, resolve=True)
    else:
        log.info("hpo.workers=%d with Hydra's basic launcher: running the workers as local processes "
                 "(hydra/launcher=submitit_slurm puts them on SLURM)", workers)
        params = {"timeout_min": 24 * 60, "cpus_per_task": 1}
    init = {f"{cluster}_max_num_timeout": params.pop("max_num_timeout")} if "max_num_timeout" in params else {}
    executor = submitit.AutoExecutor(folder=str(folder / ".submitit" / "%j"), cluster=cluster, **init)
    base = set(OmegaConf.structured(BaseQueueConf).keys())
    params = {k if k in base else f"{cluster}_{k}": v for k, v in params.items()}
    params["name"] = params.get("name") or "fedbench-hpo"
    if cluster == "slurm":
        params["slurm_array_parallelism"] = workers
    executor.update_parameters(**params)
    return executor


def run_workers(work: Callable[..., dict[str, Any]], spec: Any, workers: int, launcher: DictConfig | None,
                folder: Path, progress: Callable[[], str]) -> list[str]:
    """Submit ``workers`` calls ``work(spec, index)`` as one array; wait, logging progress; the failures."""
    executor = executor_for(launcher, folder, workers)
    jobs = executor.map_array(work, [spec] * workers, list(range(workers)))
    log.info("submitted %d workers (%s job %s); logs in %s", workers, executor.cluster,
             jobs[0].job_id.split("_")[0], folder / ".submitit")
    last = 0.0
    while not all(job.done() for job in jobs):
        if time.time() - last > 30:
            log.info("%s", progress())
            last = time.time()
        time.sleep(2)
    failures = []
    for index, job in enumerate(jobs):
        try:
            job.result()
        except Exception as err:  # noqa: BLE001 - report every worker that failed, with where its log is
            failures.append(f"worker {index} (job {job.job_id}) failed: {str(err).strip().splitlines()[-1] if str(err).strip() else type(err).__name__}; "
                            f"log: {job.paths.stderr}")
    return failures
