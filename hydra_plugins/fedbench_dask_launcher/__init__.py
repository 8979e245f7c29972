"""fedbench's Hydra launcher over Dask.distributed: ``hydra/launcher=dask`` (see ``docs/how-to/two-machines.md``).

``hydra_plugins`` is a namespace package (no ``__init__.py`` there): Hydra finds this plugin next to
hydra-submitit-launcher's.
"""
