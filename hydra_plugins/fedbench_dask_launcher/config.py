"""The launcher's typed options, stored in Hydra's ConfigStore as ``hydra/launcher=fedbench_dask``.

fedbench's ``conf/hydra/launcher/dask.yaml`` extends this schema (its defaults list names it), so a typo in a
``hydra.launcher.*`` override fails at composition instead of being ignored.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional

from hydra.core.config_store import ConfigStore


@dataclass
class LocalClusterConf:
    """The Dask ``LocalCluster`` started for the sweep when no scheduler is named."""

    n_workers: int = 2
    # per worker; null: {cpu: 1}, plus cuda: 1 when this machine has a CUDA GPU and mps: 1 with Apple MPS
    resources: Optional[Dict[str, float]] = None


@dataclass
class DaskLauncherConf:
    """Where the grid's jobs go and what each asks of its worker."""

    _target_: str = "hydra_plugins.fedbench_dask_launcher.dask_launcher.DaskLauncher"
    address: Optional[str] = None  # tcp://host:8786 of a running `dask scheduler`; null: scheduler_file or a LocalCluster
    scheduler_file: Optional[str] = None  # the JSON file `dask scheduler --scheduler-file` wrote (e.g. in the shared folder)
    resources: Dict[str, float] = field(default_factory=lambda: {"cpu": 1})  # every job's needs
    device_resources: bool = True  # device=cuda|cuda:N also asks for cuda: 1, device=mps for mps: 1
    retries: int = 1  # re-runs of a job whose task raised (a lost worker is Dask's allowed_failures instead)
    allowed_failures: int = 3  # LocalCluster: worker losses one job survives (external scheduler: its own config)
    fence_interval_s: float = 0.5  # how often a running job checks that it is still the job's only attempt
    lock_wait_s: float = 600.0  # how long a taken-over job waits for the previous attempt to release the run folder
    connect_timeout_s: float = 30.0
    local: LocalClusterConf = field(default_factory=LocalClusterConf)


ConfigStore.instance().store(group="hydra/launcher", name="fedbench_dask", node=DaskLauncherConf, provider="fedbench")
