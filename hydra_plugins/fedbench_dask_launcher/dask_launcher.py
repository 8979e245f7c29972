"""``hydra/launcher=dask``: a grid's jobs as Dask tasks, spread over the workers of one scheduler.

The launching command composes every job's config here, submits one task per job (with the job's resource
needs and a key derived from its run folder) and waits for all of them. The scheduler places each task on a
worker offering its resources and runs it there once; when that worker is lost, the scheduler gives the task to
another worker (up to ``distributed.scheduler.allowed-failures`` times), where fedbench resumes the job from the
checkpoint in its run folder (``resume=auto``). A finished job's folder is skipped, as with any launcher.
"""

import hashlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence

from hydra.core.hydra_config import HydraConfig
from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, configure_log, filter_overrides, setup_globals
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf, open_dict

from .cluster import check_placement, job_resources, open_client
from .job import JobSpec, read_records, record_path, run_dask_job

log = logging.getLogger(__name__)


@dataclass
class Job:
    """One grid job as the launching machine sees it."""

    num: int
    overrides: list[str]
    config: DictConfig
    folder: str  # as configured: a relative sweep dir resolves against each worker's working directory
    resources: dict[str, float]
    key: str


class DaskLauncher(Launcher):
    """Hydra launcher plugin over ``distributed.Client``; options in :mod:`.config`."""

    def __init__(self, **params: Any) -> None:
        self.params = {k: OmegaConf.to_container(v, resolve=True) if OmegaConf.is_config(v) else v
                       for k, v in params.items()}
        self.config: Optional[DictConfig] = None
        self.task_function: Optional[TaskFunction] = None
        self.hydra_context: Optional[HydraContext] = None

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        self.config, self.hydra_context, self.task_function = config, hydra_context, task_function

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        """Run the jobs on the cluster; return their results in order (a job the cluster could not finish is
        recorded in its folder's ``failure.json`` and returns None, as a failed fedbench job does)."""
        assert self.config is not None and self.hydra_context is not None and self.task_function is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        sweep_dir = Path(str(self.config.hydra.sweep.dir))
        sweep_dir.mkdir(parents=True, exist_ok=True)
        log.info("Dask sweep output dir: %s", sweep_dir)
        jobs = [self._job(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        logging.getLogger("distributed").setLevel(logging.WARNING)  # its INFO lines (clients, nannies) drown the jobs'
        with open_client(self.params) as (client, local):
            check_placement(client, [job.resources for job in jobs], local)
            futures = [self._submit(client, job, sweep_dir) for job in jobs]
            return [self._result(job, future, sweep_dir) for job, future in zip(jobs, futures)]

    def _job(self, num: int, overrides: list[str]) -> Job:
        """Compose job ``num``'s config here (timestamps and paths resolve once, on this machine)."""
        assert self.hydra_context is not None and self.config is not None
        log.info("\t#%d : %s", num, " ".join(filter_overrides(overrides)))
        config = self.hydra_context.config_loader.load_sweep_config(self.config, overrides)
        with open_dict(config.hydra.job):
            config.hydra.job.id = f"dask_{num}"
            config.hydra.job.num = num
        HydraConfig.instance().set_config(config)  # for ${hydra:...} in the sweep dir and subdir
        folder = str(Path(str(config.hydra.sweep.dir)) / str(config.hydra.sweep.subdir))
        resources = job_resources(self.params.get("resources") or {}, OmegaConf.select(config, "device"),
                                  bool(self.params.get("device_resources", True)))
        # the same run folder is the same task: a second launch of the grid into this sweep, on this scheduler,
        # while the first still runs, attaches to the running task instead of starting the job again
        key = f"fedbench-job{num}-{hashlib.sha1(folder.encode()).hexdigest()[:12]}"
        return Job(num, overrides, config, folder, resources, key)

    def _submit(self, client: Any, job: Job, sweep_dir: Path) -> Any:
        assert self.hydra_context is not None and self.task_function is not None
        spec = JobSpec(job.config, self.task_function, self.hydra_context.callbacks, Singleton.get_state(),
                       job.folder, str(record_path(sweep_dir, job.num)), float(self.params.get("fence_interval_s", 0.5)),
                       float(self.params.get("lock_wait_s", 600.0)))
        return client.submit(run_dask_job, spec, key=job.key, resources=job.resources or None,
                             retries=int(self.params.get("retries", 1)), pure=False)

    def _result(self, job: Job, future: Any, sweep_dir: Path) -> JobReturn:
        """The job's JobReturn; a task the cluster gave up on (e.g. ``KilledWorker``: it lost more workers than
        allowed) is recorded as the job's failure, so the sweep ends normally and reports it."""
        try:
            ret = future.result()
        except Exception as err:  # noqa: BLE001 - one job's loss must not end the sweep
            from fedbench.cli import record_failure

            log.error("job #%d (%s) failed on the cluster: %s: %s", job.num, job.folder, type(err).__name__, err)
            record_failure(job.folder, err)
            ret = JobReturn(overrides=job.overrides, cfg=job.config, hydra_cfg=job.config, return_value=None,
                            status=JobStatus.COMPLETED)
        ends = [e for e in read_records(record_path(sweep_dir, job.num)) if e.get("event") == "end"]
        if ends:
            log.info("job #%d done on %s (%s)", job.num, ends[-1].get("name"), ends[-1].get("host"))
        return ret
