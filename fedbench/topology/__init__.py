"""Topologies: who trains, who talks to whom, and how uploads are combined, one round at a time.

A topology is a record of pure functions, like an :class:`~fedbench.algorithms.base.Algorithm`:

* ``init(exp, server) -> state``: the topology's state from the algorithm's initial server state;
* ``step(exp, cfg, state, round) -> (state, row)``: one round of communication (the backend still
  runs the client jobs, so every topology runs on every backend with the same numbers);
* ``check(cfg, algorithm) -> None``: refuse, before any data is loaded, what the topology cannot run;
* ``summary(state) -> dict``: what goes into ``summary.json`` (e.g. a spectral gap).

The state is a dict of tensors, lists and numbers that the checkpoint stores as is. It always holds
``server`` (the state whose ``params`` is the model the run reports: the global model, the cloud
model, or the nodes' average) and ``client_states``; a topology adds what it needs (every gossip
node's model, the edge servers, an event queue and clock).

A topology also declares its :class:`TopologyCapabilities`; the checks that refuse a combination
(:mod:`fedbench.compat`) read those and name them, so a new topology works with every other part that
its capabilities admit, without anyone's file naming it. Its ``step`` is usually the one round pipeline
(:mod:`fedbench.round`) with the topology's hooks.
"""
from fedbench.topology.base import Topology, TopologyCapabilities, TopologyState  # noqa: E402,F401 - the public record
