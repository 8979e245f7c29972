"""Which parts can run together: every check that refuses a combination of parts, in one place, reading what each
part declares (its capabilities) and naming that capability in the message. A new algorithm, topology, compressor,
aggregator or privacy mechanism is combinable with everything its declarations admit, without editing anyone's file.

The declarations read here: :class:`~fedbench.topology.TopologyCapabilities` (``server_aggregation``,
``single_aggregation``, ``samples_cohorts``, ``full_participation``, ``carries_buffers``, ``compresses_broadcast``,
``needs_plain_clients``, ``needs_plain_average``, ``runs_node_updates``); the algorithm's ``averages_uploads``,
``plain_clients``, ``plain_average``, ``decentralized``, ``local_passes``, ``local_loss`` and ``work``; the aggregator's ``is_mean`` and ``min_uploads``; the privacy
mechanism's ``combine``, ``client_dp`` and ``needs``; the attack's Byzantine clients.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig

from fedbench.algorithms.base import Algorithm
from fedbench.compress.channel import compressor_of
from fedbench.errors import ConfigError, require
from fedbench.threat_model import ThreatModel
from fedbench.topology.base import Topology


def check_topology(cfg: DictConfig, algorithm: Algorithm, topology: Topology) -> None:
    """The algorithm, the participation and the compression direction against what the topology declares."""
    caps, name = topology.capabilities, topology.name
    if caps.full_participation:
        require(cfg.client_fraction == 1, "client_fraction", f"1 with topology={name} (full_participation: every "
                "node trains and mixes every round)", cfg.client_fraction)
    node_update = algorithm.decentralized is not None
    if node_update and not caps.runs_node_updates:
        raise ConfigError(f"algorithm: {algorithm.name} is a decentralized method (it declares a node update and has no "
                          f"server step); it runs on topologies that declare runs_node_updates (gossip), not "
                          f"topology={name}")
    admitted = node_update and caps.runs_node_updates  # the topology runs its declared node update instead
    if caps.needs_plain_average and not (algorithm.plain_clients and algorithm.plain_average) and not admitted:
        raise ConfigError(f"algorithm: topology={name} {topology.does}; the algorithm must declare plain_clients and "
                          f"plain_average (its server update is a plain "
                          f"average of its clients' models: fedavg or fedsgd with algorithm.upload=weights, and the "
                          f"default server_optimizer) or a decentralized node update (gradient_tracking, extra, "
                          f"pushsum) (got {algorithm.name} {algorithm.options})")
    if caps.needs_plain_clients and not algorithm.plain_clients and not admitted:
        raise ConfigError(f"algorithm: topology={name} {topology.does}; the algorithm must declare plain_clients (plain local training, no client state or local loss term: fedavg, or fedsgd "
                          f"with algorithm.upload=weights) (got {algorithm.name})")
    sampling = cfg.get("client_sampling", "auto")
    require(caps.samples_cohorts or sampling != "poisson", "client_sampling", f"fixed or auto with topology={name} "
            "(it does not sample cohorts per round: samples_cohorts is false)", sampling)
    if not caps.compresses_uploads and not compressor_of(cfg.compressor).identity:
        raise ConfigError(f"compressor: topology={name} does not declare compresses_uploads (its clients' messages are "
                          f"not sent through a compressor); use compressor=none")
    direction = cfg.compressor.get("direction", "up")
    require(direction == "up" or caps.compresses_broadcast, "compressor.direction", f"up with topology={name} (it has "
            "no server broadcast to compress: compresses_broadcast is false; uploads are compressed)", direction)


def check_threat(cfg: DictConfig, algorithm: Algorithm, topology: Topology, threat: ThreatModel) -> None:
    """The aggregator, dropout, attack and privacy mechanism against the algorithm and the topology."""
    agg, caps, name = threat.aggregator, topology.capabilities, topology.name
    if not agg.is_mean:
        if not algorithm.averages_uploads:
            raise ConfigError(f"aggregator: algorithm {algorithm.name} combines its uploads in its own way (control "
                              f"variates, normalized or dual updates: it does not declare averages_uploads); robust "
                              f"aggregators replace the mean of an algorithm that averages its uploads (got "
                              f"aggregator={agg.name})")
        require(caps.server_aggregation, "aggregator", f"mean with topology={name} (robust aggregators replace a "
                "server's mean; this topology has no server_aggregation)", agg.name)
        where = (f"num_clients {cfg.num_clients} x client_fraction {cfg.client_fraction}"
                 f"{' per server' if not caps.single_aggregation else ''}")
        agg.check_uploads(topology.uploads_per_aggregation(cfg), where)
    if threat.dropout > 0:
        require(caps.server_aggregation, "dropout", f"0 with topology={name} (client dropout is simulated where a "
                "server waits for uploads: server_aggregation)", threat.dropout)
    if threat.attack is not None and threat.attack.fraction > 0 and not threat.byzantine:
        raise ConfigError(f"attack.fraction: {threat.attack.fraction} x num_clients {cfg.num_clients} rounds to 0 "
                          "Byzantine clients; raise attack.fraction or use attack=none")
    if threat.privacy is not None:
        check_privacy(algorithm, topology, threat)


def check_privacy(algorithm: Algorithm, topology: Topology, threat: ThreatModel) -> None:
    """A privacy mechanism against the topology capabilities it needs, the aggregator and the algorithm."""
    privacy, caps = threat.privacy, topology.capabilities
    missing = [need for need in privacy.needs if not getattr(caps, need)]
    require(not missing, "privacy", f"none with topology={topology.name} ({privacy.name}'s accounting needs "
            f"{' and '.join(missing)}, which this topology does not declare)", privacy.name)
    if privacy.combine is not None:
        if not algorithm.averages_uploads:
            raise ConfigError(f"privacy: {privacy.name} replaces the mean of the uploads with a clipped noisy sum; it "
                              f"runs with algorithms that declare averages_uploads: fedavg, fedprox, the FedOpt presets "
                              f"and fedsgd (got algorithm {algorithm.name})")
        require(threat.aggregator.is_mean, "aggregator", f"mean with privacy={privacy.name} (its clipped noisy sum "
                "replaces the mean: the mechanism declares a combine, so the aggregator must be is_mean)",
                threat.aggregator.name)
    if privacy.per_sample and algorithm.local_passes is not None:
        raise ConfigError(f"privacy: {privacy.name} clips per-sample gradients of one pass of local training; algorithm "
                          f"{algorithm.name} declares local_passes of its own (a personal model or head trained "
                          "beside the shared one), which fedbench does not run under DP-SGD")
    if privacy.per_sample and (algorithm.local_loss is not None or algorithm.work != "train"):
        raise ConfigError(f"privacy: {privacy.name} clips per-sample gradients of the task loss; algorithm "
                          f"{algorithm.name} declares a local_loss term or a work other than local training (use fedavg, the FedOpt "
                          f"presets, fedprox with algorithm.mu=0, or fedsgd with algorithm.upload=weights)")


def check_model(task: Any, topology: Topology, threat: ThreatModel, local_buffers: bool, has_buffers: bool) -> None:
    """The model against the topology (buffers) and the privacy mechanism (what it releases, per-sample gradients)."""
    if has_buffers and not topology.capabilities.carries_buffers:
        raise ConfigError(f"model: topology={topology.name} does not carry buffers (BatchNorm statistics: "
                          f"carries_buffers is false); use a model without them (e.g. model=mlp)")
    privacy = threat.privacy
    if privacy is not None and privacy.combine is not None and has_buffers and not local_buffers:
        raise ConfigError(f"model: privacy={privacy.name} clips and noises the parameters, but this model has buffers "
                          "(BatchNorm running statistics) whose plain mean the server would publish outside the "
                          "mechanism, uncovered by epsilon; set task.local_buffers=true (FedBN: buffers never leave the "
                          "clients) or use a model without buffers (e.g. model=mlp)")
    if privacy is not None and privacy.per_sample:
        from opacus.validators import ModuleValidator

        errors = ModuleValidator.validate(task, strict=False)
        if errors:
            raise ConfigError(f"model: privacy={privacy.name} needs per-sample gradients of every layer (opacus); this "
                              f"model has layers opacus cannot handle: "
                              f"{'; '.join(str(e).split('. ')[0] for e in errors[:3])} (use model=mlp, cnn or logistic)")
