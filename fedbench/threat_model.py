"""The run's robustness and privacy parts (``aggregator``, ``attack``, ``dropout``, ``privacy``), built together before
any data is loaded; :mod:`fedbench.compat` checks them against the algorithm and the topology."""

from __future__ import annotations

from dataclasses import dataclass

from omegaconf import DictConfig

from fedbench.aggregators import Aggregator, mean
from fedbench.attacks import Attack, byzantine_clients
from fedbench.errors import require
from fedbench.parts import build_part
from fedbench.privacy import Privacy


@dataclass(frozen=True)
class ThreatModel:
    """What the upload path does besides the algorithm: who attacks, who drops out, how uploads are
    combined, and the privacy mechanism."""

    aggregator: Aggregator
    attack: Attack | None = None
    byzantine: frozenset[int] = frozenset()
    privacy: Privacy | None = None
    dropout: float = 0.0


def build_threat_model(cfg: DictConfig) -> ThreatModel:
    """Instantiate the run's aggregator, attack, dropout and privacy (each checks its own options)."""
    agg = build_part(cfg.aggregator)
    require(isinstance(agg, Aggregator), "aggregator", "an Aggregator factory", type(agg).__name__)
    attack = build_part(cfg.attack)
    require(attack is None or isinstance(attack, Attack), "attack", "an Attack factory", type(attack).__name__)
    privacy = build_part(cfg.privacy)
    require(privacy is None or isinstance(privacy, Privacy), "privacy", "a Privacy factory", type(privacy).__name__)
    byzantine = byzantine_clients(cfg.num_clients, attack.fraction, attack.seed) if attack is not None else frozenset()
    return ThreatModel(agg, attack, byzantine, privacy, float(cfg.get("dropout", 0.0)))


def check_baseline(cfg: DictConfig) -> None:
    """The baselines (``paradigm=centralized|data_parallel``, the pipeline) have no clients: refuse a threat model."""
    threat = build_threat_model(cfg)
    parts = {"aggregator": (not threat.aggregator.is_mean, threat.aggregator.name, mean().name),
             "attack": (threat.attack is not None, getattr(threat.attack, "name", "none"), "none"),
             "privacy": (threat.privacy is not None, getattr(threat.privacy, "name", "none"), "none")}
    for group, (present, name, default) in parts.items():
        require(not present, group, f"{default} with paradigm={cfg.paradigm} (the baselines train on pooled data "
                "without clients; aggregator, attack, privacy and dropout apply to paradigm=federated)", name)
    require(not cfg.get("dropout", 0.0), "dropout", f"0 with paradigm={cfg.paradigm} (no clients to drop)",
            cfg.get("dropout"))


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
        out.update(privacy=p.name, noise_multiplier=p.noise_multiplier, clip=p.clip, delta=p.delta,
                   epsilon=rows[-1].get("epsilon") if rows else 0.0, **p.accounting(sampling))
    return out
