"""``python -m fedbench [overrides]``: the same as the ``fedbench`` command (:func:`fedbench.cli.main`)."""

import warnings

from fedbench.cli import main

# conf/hydra/launcher/submitit_*.yaml deliberately share their names with the plugin's schemas,
# so the documented `hydra/launcher=submitit_slurm` gets our defaults, validated by that schema.
warnings.filterwarnings("ignore", message=r"\s*'hydra/launcher/submitit_\w+' is validated against ConfigStore schema")

if __name__ == "__main__":
    main()
