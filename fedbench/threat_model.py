"""The run's robustness and privacy parts (``aggregator``, ``attack``, ``dropout``, ``privacy``), built
and checked together before any data is loaded: combinations that make no sense are refused with
the field, what is allowed and why."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from fedbench.aggregators import Aggregator
from fedbench.algorithms.base import Algorithm
from fedbench.attacks import Attack, byzantine_clients
from fedbench.errors import ConfigError, require
from fedbench.parts import build_part
from fedbench.privacy import Privacy, accounting
from fedbench.sampling import clients_per_round

SERVER_TOPOLOGIES = ("star", "hierarchical")
AVERAGING = "fedavg, fedprox, the FedOpt presets (fedavgm, fedadam, fedyogi, fedadagrad) and fedsgd"


@dataclass(frozen=True)
class ThreatModel:
    """What the upload path does besides the algorithm: who attacks, who drops out, how uploads are
    combined, and the privacy mechanism."""

    aggregator: Aggregator
    attack: Attack | None = None
    byzantine: frozenset[int] = frozenset()
    privacy: Privacy | None = None
    dropout: float = 0.0


def uploads_per_aggregation(cfg: DictConfig, topology: str) -> int:
    """Uploads one server aggregation expects: ``m`` on the star, ``m // num_edges`` per edge."""
    m = clients_per_round(cfg.num_clients, cfg.client_fraction)
    return max(m // cfg.topology.get("num_edges", 1), 1) if topology == "hierarchical" else m


def check(cfg: DictConfig, algorithm: Algorithm, topology: str, threat: ThreatModel) -> None:
    """Refuse what cannot run together (see the module docstring)."""
    agg, attack, privacy = threat.aggregator, threat.attack, threat.privacy
    if agg.name != "mean":
        if not algorithm.averages_uploads:
            raise ConfigError(f"aggregator: algorithm {algorithm.name} combines its uploads in its own way (control "
                              f"variates, normalized or dual updates); robust aggregators replace the mean of "
                              f"{AVERAGING} (got aggregator={agg.name})")
        require(topology in SERVER_TOPOLOGIES, "aggregator", f"mean with topology={topology} (robust aggregators "
                f"replace a server's mean: topology star or hierarchical)", agg.name)
        need, have = agg.min_uploads, uploads_per_aggregation(cfg, topology)
        if have < need:
            raise ConfigError(f"aggregator.f: {agg.name} needs n > 2f + 2 uploads per aggregation; this run aggregates "
                              f"n = {have} (num_clients {cfg.num_clients} x client_fraction {cfg.client_fraction}"
                              f"{' / num_edges' if topology == 'hierarchical' else ''}), so f must be <= "
                              f"{max((have - 3) // 2, 0)} (got f={agg.options['f']})")
    if privacy is not None:
        allowed = ("star",) if privacy.kind == "dp_fedavg" else SERVER_TOPOLOGIES
        require(topology in allowed, "privacy",
                f"none with topology={topology} ({privacy.kind} is accounted on "
                f"{'the star' if privacy.kind == 'dp_fedavg' else 'the star and hierarchical topologies'})", privacy.kind)
    if privacy is not None and privacy.kind == "dp_fedavg":
        if not algorithm.averages_uploads:
            raise ConfigError(f"privacy: dp_fedavg replaces the mean of the uploads with a clipped noisy sum; it runs "
                              f"with {AVERAGING} (got algorithm {algorithm.name})")
        require(agg.name == "mean", "aggregator", "mean with privacy=dp_fedavg (its clipped noisy sum replaces the "
                "mean)", agg.name)
    if privacy is not None and privacy.kind == "local_dp":
        if algorithm.local_loss is not None or algorithm.work != "train":
            raise ConfigError(f"privacy: local_dp clips per-sample gradients of the task loss; algorithm "
                              f"{algorithm.name} adds a local loss term or takes no local steps (use fedavg, the FedOpt "
                              f"presets, fedprox with algorithm.mu=0, or fedsgd with algorithm.upload=weights)")
    if threat.dropout > 0:
        require(topology in SERVER_TOPOLOGIES, "dropout",
                f"0 with topology={topology} (client dropout is simulated on the star and hierarchical topologies)",
                threat.dropout)
    if attack is not None and attack.fraction > 0 and not threat.byzantine:
        raise ConfigError(f"attack.fraction: {attack.fraction} x num_clients {cfg.num_clients} rounds to 0 Byzantine "
                          f"clients; raise attack.fraction or use attack=none")


DEFAULTS = {"aggregator": "fedbench.aggregators.mean", "attack": "fedbench.attacks.none",
            "privacy": "fedbench.privacy.none"}


def check_baseline(cfg: DictConfig) -> None:
    """The baselines (``paradigm=centralized|data_parallel``) have no clients: refuse a threat model."""
    for group, default in DEFAULTS.items():
        target = cfg[group]["_target_"]
        require(target == default, group, f"{default.rsplit('.', 1)[-1]} with paradigm={cfg.paradigm} (the baselines "
                "train on pooled data without clients; aggregator, attack, privacy and dropout apply to "
                "paradigm=federated)", target.rsplit(".", 1)[-1])
    require(not cfg.get("dropout", 0.0), "dropout", f"0 with paradigm={cfg.paradigm} (no clients to drop)",
            cfg.get("dropout"))


def build_threat_model(cfg: DictConfig, algorithm: Algorithm, topology: str) -> ThreatModel:
    """Instantiate and check the run's aggregator, attack, dropout and privacy."""
    agg = build_part(cfg.aggregator)
    require(isinstance(agg, Aggregator), "aggregator", "an Aggregator factory", type(agg).__name__)
    attack = build_part(cfg.attack)
    require(attack is None or isinstance(attack, Attack), "attack", "an Attack factory", type(attack).__name__)
    privacy = build_part(cfg.privacy)
    require(privacy is None or isinstance(privacy, Privacy), "privacy", "a Privacy factory", type(privacy).__name__)
    byzantine = byzantine_clients(cfg.num_clients, attack.fraction, attack.seed) if attack is not None else frozenset()
    threat = ThreatModel(agg, attack, byzantine, privacy, float(cfg.get("dropout", 0.0)))
    check(cfg, algorithm, topology, threat)
    return threat


def threat_summary(threat: ThreatModel, rows: list[dict], sampling: str = "fixed") -> dict:
    """What ``summary.json`` records of the threat model: the aggregator, and when set the attack and its
    Byzantine clients, the dropout, and the privacy mechanism with its final epsilon at delta and how that
    epsilon was accounted (sampling, adjacency, accountant and its error bound)."""
    out: dict = {"aggregator": threat.aggregator.name}
    if threat.attack is not None:
        out.update(attack=threat.attack.name, attack_fraction=threat.attack.fraction,
                   byzantine_clients=sorted(threat.byzantine))
    if threat.dropout:
        out["dropout"] = threat.dropout
    if threat.privacy is not None:
        p = threat.privacy
        out.update(privacy=p.kind, noise_multiplier=p.noise_multiplier, clip=p.clip, delta=p.delta,
                   epsilon=rows[-1].get("epsilon") if rows else 0.0, **accounting(p, sampling))
    return out
