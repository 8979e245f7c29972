"""The columns of a round's metrics row: the standard ones every row has (:data:`fedbench.metrics.COLUMNS`), the
threat model's (``byzantine``, ``epsilon``) and the compression columns. :func:`fedbench.round.run_round` assembles
them for every topology."""

from __future__ import annotations

import math
import time
from typing import Any, Sequence

from omegaconf import DictConfig

from fedbench.algorithms.base import LocalResult
from fedbench.comm import RoundComm
from fedbench.experiment import Experiment
from fedbench.privacy import Release
from fedbench.sampling import clients_per_round
from fedbench.stages import mean_logged


def compression_columns(raw_up: int, raw_down: int, comm: RoundComm, down: bool = False) -> dict[str, Any]:
    """``raw_bytes_up/down`` (the round's traffic as fp32) and ``compression_ratio`` = fp32 / wire bytes of the
    compressed direction(s): uploads, plus the broadcast when ``down``."""
    raw, wire = raw_up + (raw_down if down else 0), comm.bytes_up + (comm.bytes_down if down else 0)
    return {"raw_bytes_up": raw_up, "raw_bytes_down": raw_down, "compression_ratio": raw / wire if wire else float("nan")}


def threat_columns(exp: Experiment, cfg: DictConfig, results: Sequence[LocalResult], r: int,
                   client_states: dict[int, Any], aggregations: int = 1) -> dict[str, Any]:
    """``byzantine`` (attackers among the round's reports) with an attack; ``epsilon`` with privacy: the mechanism's
    own epsilon (:class:`fedbench.privacy.Privacy`) after ``r * aggregations`` noisy aggregations and the DP-SGD
    steps each client released."""
    threat, out = exp.threat, {}
    if threat.attack is not None:
        out["byzantine"] = sum(res.client in threat.byzantine for res in results)
    p = threat.privacy
    if p is not None:
        released = [(len(exp.client_data[c][1]), int(s["privacy"]["steps"])) for c, s in client_states.items()
                    if "privacy" in s]
        release = Release(exp.sampling, cfg.num_clients, clients_per_round(cfg.num_clients, cfg.client_fraction),
                          r * aggregations, released, cfg.batch_size)
        out["epsilon"] = p.epsilon(release)
    return out


def simulated_compute(exp: Experiment, res: LocalResult) -> float:
    """A client's simulated compute time: its local steps x ``client_speed.step_time_s`` (when set, a
    deterministic compute model) or its measured compute time, divided by its speed factor."""
    base = res.compute_s if exp.step_time_s is None else res.steps * exp.step_time_s
    return base / exp.speeds[res.client]


def row(r: int, results: Sequence[LocalResult], ranks: list[dict[str, Any]], comm: RoundComm, clients: int,
        acc: float, loss: float, times: dict[str, float], comm_sim: float, exp: Experiment) -> dict[str, Any]:
    """The standard metrics row of a round (``times``: t0, aggregate_s, eval_s)."""
    n = sum(res.num_samples for res in results)
    return {
        "round": r, "test_accuracy": acc, "test_loss": loss,
        "train_loss": sum(res.train_loss * res.num_samples for res in results) / n if n else math.nan,
        "clients": clients, "steps": sum(res.steps for res in results),
        "messages_up": comm.messages_up, "messages_down": comm.messages_down,
        "bytes_up": comm.bytes_up, "bytes_down": comm.bytes_down,
        "compute_s": sum(res.compute_s for res in results), "aggregate_s": times["aggregate_s"],
        "eval_s": times["eval_s"],
        "comm_s": max((t["comm_s"] for t in ranks), default=0.0), "idle_s": sum(t["wait_s"] for t in ranks),
        "comm_sim_s": comm_sim,
        "sim_round_s": max((simulated_compute(exp, res) for res in results), default=0.0) + comm_sim,
        "wall_s": time.perf_counter() - times["t0"], "ranks": ranks,
        **mean_logged(results),
    }
