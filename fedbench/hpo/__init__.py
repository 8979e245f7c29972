"""Hyperparameter search with Optuna (``python -m fedbench.hpo +hpo=<name>``).

* :mod:`fedbench.hpo.settings` — the ``hpo`` node of a preset: search space, objectives, sampler, pruner;
* :mod:`fedbench.hpo.study` — storage (journal file or database), sampler, pruner, the study folder;
* :mod:`fedbench.hpo.trial` — one trial = one fedbench run, its rounds reported to the pruner;
* :mod:`fedbench.hpo.worker` — the ask/run/tell loop shared by parallel workers, lost trials retried;
* :mod:`fedbench.hpo.parallel` — ``hpo.workers=N`` as a submitit array (SLURM or local);
* :mod:`fedbench.hpo.outputs` — ``trials.csv``, ``best.yaml``, plots, ``hpo_summary.json``.
"""

import warnings

from optuna.exceptions import ExperimentalWarning

# RetryFailedTrialCallback's helpers and the matplotlib plots are marked experimental since Optuna 2.x/3.x
warnings.filterwarnings("ignore", category=ExperimentalWarning, module=r"fedbench\.hpo")
