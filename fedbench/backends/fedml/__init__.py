"""``backend=fedml``: FedML 0.9.6's own simulators (single process, MPI) run fedbench's experiment in an
isolated environment (:mod:`.environment`); :mod:`.runner` is the entry point, :mod:`.translate` the
config mapping and its refusals, :mod:`.handoff` the files FedML reads, ``env/driver.py`` the script that
runs inside FedML's environment."""
