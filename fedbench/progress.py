"""The console's progress line of a round: metrics, traffic, time, clients per second and the time left."""

from __future__ import annotations

import logging
from typing import Any

from omegaconf import DictConfig

from fedbench.sampling import clients_per_round

log = logging.getLogger("fedbench")


def log_row(row: dict[str, Any], rounds: int) -> None:
    """One line per round; the time left is the mean round time so far times the rounds left."""
    mean = row["cum_wall_s"] / max(row["round"], 1)
    log.info("round %d/%d  acc %.4f  test_loss %.4f  train_loss %.4f  clients %d  cum up %.2f MB  down %.2f MB  %.2fs  "
             "%.3g clients/s  eta %s", row["round"], rounds, row["test_accuracy"], row["test_loss"], row["train_loss"],
             row["clients"], row["cum_bytes_up"] / 1e6, row["cum_bytes_down"] / 1e6, row["wall_s"],
             row["clients"] / row["wall_s"] if row["wall_s"] > 0 else 0.0, duration(mean * (rounds - row["round"])))


def header(cfg: DictConfig, algorithm: str, options: dict[str, Any], data: str, topology: str, params: int,
           resumed_after: int, out: Any) -> None:
    """The run's first line: what runs (algorithm and its server-side options, data, topology, model size) and the
    client-side knobs of the papers: N clients, m per round, E local epochs, B batch size and the client lr."""
    m = clients_per_round(int(cfg.num_clients), float(cfg.client_fraction))
    batch = "inf" if cfg.batch_size is None else cfg.batch_size
    server = " ".join(f"{'server_lr' if k == 'lr' else k}={v}" for k, v in options.items())  # the client lr is cfg.lr
    log.info("%s (%s) on %s, %s topology, %s params: N=%d clients, m=%d per round, E=%s, B=%s, client lr %s; %d rounds%s "
             "-> %s", algorithm, server or "no options", data, topology, f"{params:,}", cfg.num_clients, m,
             cfg.local_epochs, batch, cfg.lr, cfg.rounds, f" (resuming after round {resumed_after})" if resumed_after else "",
             out)


def duration(seconds: float) -> str:
    """``1h02m``, ``3m05s`` or ``42s``."""
    seconds = int(round(seconds))
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m" if seconds >= 3600 else \
        f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"
