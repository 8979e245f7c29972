"""One round, as one pipeline every topology runs: sample -> local work (with the threat model's attacks) -> uploads
(algorithm, buffers, compression, byte accounting) -> combine and server step -> evaluate -> row.

A topology supplies :class:`RoundHooks`: which servers there are and whom each serves, how many sub-rounds a round
has (a hierarchy's edge rounds), and optionally its own version of a stage (gossip mixes instead of uploading,
asynchronous FL takes the arrivals off its event queue). The driver, :func:`run_round`, calls the stages in order,
times them, and builds the metrics row from what they recorded in the :class:`RoundContext`: the standard columns
(:data:`fedbench.metrics.COLUMNS`), then the threat model's (``byzantine``, ``epsilon``), the compression columns, the
topology's own columns and the server update's metrics. A new topology therefore cannot forget a stage's columns.

The default stages serve any number of servers (the star has one; a hierarchy one per edge).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from omegaconf import DictConfig

from fedbench.algorithms.base import LocalResult, State, Upload
from fedbench.client_eval import client_columns
from fedbench.comm import RoundComm, count_round
from fedbench.experiment import Experiment
from fedbench.network import round_comm_time
from fedbench.params import nbytes
from fedbench.round_columns import compression_columns, row, threat_columns
from fedbench.sampling import clients_per_round
from fedbench.stages import (broadcast_keys, eval_buffers, evaluate_model, evaluates, local_work, make_uploads,
                             mean_buffers, participants, personal_evaluation, server_step)

log = logging.getLogger("fedbench")


@dataclass
class RoundContext:
    """What one round's stages read and record (the driver turns it into the metrics row)."""

    exp: Experiment
    cfg: DictConfig
    r: int
    state: dict[str, Any]
    t0: float = field(default_factory=time.perf_counter)
    key: int = 0  # the current sub-round's draw key (the round, or a hierarchy's edge round)
    servers: dict[int, State] = field(default_factory=dict)  # each server's state (star: {0: server})
    server_of: Callable[[int], int] = lambda c: 0
    sent: dict[int, State] = field(default_factory=dict)  # the model each server's clients train from
    down_each: dict[int, int | None] = field(default_factory=dict)  # bytes per receiver of a compressed broadcast
    sampled: list[int] = field(default_factory=list)  # this sub-round's sampled clients
    active: list[int] = field(default_factory=list)  # those whose work arrives
    work: Any = None
    states: dict[int, Any] = field(default_factory=dict)
    results: list[LocalResult] = field(default_factory=list)  # this sub-round's
    uploads: dict[int, list[Upload]] = field(default_factory=dict)  # this sub-round's, per server
    parts: dict[int, RoundComm] = field(default_factory=dict)  # this sub-round's traffic, per server
    all_results: list[LocalResult] = field(default_factory=list)
    ranks: list[dict[str, Any]] = field(default_factory=list)
    comm: RoundComm = RoundComm(0, 0, 0, 0)
    total_sampled: int = 0
    raw_up: int = 0
    raw_down: int = 0
    aggregate_s: float = 0.0
    comm_sim_s: float = 0.0
    aggregations: int = 0  # sub-rounds with a server aggregation (a privacy mechanism's releases)
    stepped: int = 0  # server steps taken
    accuracy: tuple[float, float] = (math.nan, math.nan)
    extra: dict[str, Any] = field(default_factory=dict)  # the server update's metrics
    columns: dict[str, Any] = field(default_factory=dict)  # the topology's own columns
    scratch: dict[str, Any] = field(default_factory=dict)  # a topology's values passed between its own stages
    out: dict[str, Any] = field(default_factory=dict)  # the new topology state


def one_server(ctx: RoundContext) -> None:
    """The star's servers: one, serving every client."""
    ctx.servers, ctx.server_of = {0: ctx.state["server"]}, lambda c: 0


def one_subround(ctx: RoundContext) -> int:
    return 1


def sample_cohort(ctx: RoundContext) -> None:
    """Sample (fixed-size or Poisson), assign work and drop failures (:func:`fedbench.stages.participants`), then
    each server's broadcast (compressed with a ``down`` channel: clients train from the decoded view)."""
    exp, channel = ctx.exp, ctx.exp.channel
    clients = ctx.state["client_states"]
    ctx.sampled, ctx.work, ctx.active, ctx.states = participants(
        exp, ctx.cfg, ctx.key, clients, lambda c: ctx.servers[ctx.server_of(c)])
    ctx.total_sampled += len(ctx.sampled)
    ctx.sent, ctx.down_each = dict(ctx.servers), {}
    if channel is not None and channel.down:
        for s, server in ctx.servers.items():
            ctx.sent[s], ctx.servers[s], ctx.down_each[s] = channel.broadcast(server, broadcast_keys(exp, server), ctx.key)


def train_cohort(ctx: RoundContext) -> None:
    """The active clients' local work on the backend, from their server's model (attacks applied)."""
    ctx.results, ranks = local_work(ctx.exp, ctx.work, ctx.key, ctx.active, lambda c: ctx.sent[ctx.server_of(c)],
                                    ctx.states)
    ctx.all_results += ctx.results
    ctx.ranks += ranks


def upload_to_servers(ctx: RoundContext) -> None:
    """Each server's uploads (:func:`fedbench.stages.make_uploads`) and traffic: one message down per sampled client
    of that server, one up per upload, in wire bytes."""
    exp = ctx.exp
    ctx.uploads, ctx.parts = {}, {}
    for s in sorted(ctx.servers):
        mine = [res for res in ctx.results if ctx.server_of(res.client) == s]
        uploads = make_uploads(exp, lambda c: ctx.sent[s], mine, ctx.states, ctx.state["client_states"], ctx.key)
        keys = broadcast_keys(exp, ctx.servers[s])
        receivers = sum(ctx.server_of(c) == s for c in ctx.sampled)
        part = count_round(ctx.servers[s], keys, receivers, uploads, ctx.down_each.get(s))
        ctx.uploads[s], ctx.parts[s], ctx.comm = uploads, part, ctx.comm + part
        ctx.raw_up += sum(nbytes(u.tensors) for u in uploads)
        if exp.topology.capabilities.compresses_broadcast:
            ctx.raw_down += nbytes({k: ctx.servers[s][k] for k in keys}) * receivers


def combine_for(exp: Experiment, cfg: DictConfig, r: int, server: State | None = None):  # -> Combine
    """Round ``r``'s rule for combining uploads: a privacy mechanism's (DP-FedAvg's clipped noisy sum) when it has
    one, else the ``aggregator`` (the weighted mean by default)."""
    privacy = exp.threat.privacy
    if privacy is not None and privacy.combine is not None:
        like = None if server is None else server["params"]
        return privacy.combine(clients_per_round(cfg.num_clients, cfg.client_fraction), r, like)
    return exp.threat.aggregator.combine


def combine_on_servers(ctx: RoundContext) -> None:
    """Each server's combine and the algorithm's server step on its uploads (a privacy mechanism that releases noise
    every round steps even on none)."""
    privacy = ctx.exp.threat.privacy
    noisy = privacy is not None and privacy.releases_when_empty
    for s in sorted(ctx.servers):
        uploads = ctx.uploads.get(s, [])
        if uploads or noisy:
            mine = [res for res in ctx.results if ctx.server_of(res.client) == s]
            ctx.servers[s], extra = server_step(ctx.exp, ctx.servers[s], uploads, mean_buffers(mine),
                                                combine_for(ctx.exp, ctx.cfg, ctx.key, ctx.servers[s]))
            ctx.extra.update(extra)
            ctx.stepped += 1
    ctx.aggregations += 1


def star_comm_time(ctx: RoundContext) -> float:
    """The network model's time for the sub-round's traffic (:func:`fedbench.network.round_comm_time`)."""
    uploads = sum(len(u) for u in ctx.uploads.values())
    return round_comm_time(ctx.exp.network, uploads, ctx.comm.bytes_down, ctx.comm.bytes_up)


def warn_if_silent(ctx: RoundContext) -> None:
    """Log a round in which no sampled client reported and no server stepped."""
    if not ctx.all_results and ctx.total_sampled and not ctx.stepped:
        log.warning("round %d: none of the %d sampled clients reported (dropped out or dropped stragglers); the "
                    "model is unchanged", ctx.r, ctx.total_sampled)


def keep_server(ctx: RoundContext) -> None:
    """The star's new state: its one server."""
    warn_if_silent(ctx)
    ctx.out = {"server": ctx.servers[0], "client_states": ctx.state["client_states"]}


def evaluate_server(ctx: RoundContext) -> None:
    """The reported model (``out["server"]``) on the test set, and on each evaluated client's own data
    (:mod:`fedbench.client_eval`: the client-accuracy columns) when per-client evaluation is on, with each client's
    personal model too for personalization methods (the personal-accuracy columns)."""
    server = ctx.out["server"]
    ctx.accuracy = evaluate_model(ctx.exp, ctx.cfg, ctx.r, server, ctx.all_results)
    if evaluates(ctx.exp, ctx.cfg, ctx.r):
        ctx.columns.update(client_columns(ctx.exp, server["params"], eval_buffers(ctx.exp, server, ctx.all_results)))
        ctx.columns.update(personal_evaluation(ctx.exp, ctx.cfg, ctx.r, server, ctx.out["client_states"],
                                               ctx.all_results))


def subround_key(ctx: RoundContext, k: int) -> int:
    return ctx.r


@dataclass(frozen=True)
class RoundHooks:
    """A topology's round: each field is a stage (defaults: the star's); see the module docstring."""

    servers: Callable[[RoundContext], None] = one_server
    subrounds: Callable[[RoundContext], int] = one_subround
    key: Callable[[RoundContext, int], int] = subround_key
    sample: Callable[[RoundContext], None] = sample_cohort
    train: Callable[[RoundContext], None] = train_cohort
    upload: Callable[[RoundContext], None] = upload_to_servers
    combine: Callable[[RoundContext], None] = combine_on_servers
    comm_time: Callable[[RoundContext], float] = star_comm_time
    finish: Callable[[RoundContext], None] = keep_server
    evaluate: Callable[[RoundContext], None] = evaluate_server


def run_round(exp: Experiment, cfg: DictConfig, state: dict[str, Any], r: int,
              hooks: RoundHooks) -> tuple[dict[str, Any], dict[str, Any]]:
    """Round ``r`` of a topology (its ``hooks``); returns (new state, metrics row)."""
    ctx = RoundContext(exp, cfg, r, state)
    hooks.servers(ctx)
    for k in range(hooks.subrounds(ctx)):
        ctx.key = hooks.key(ctx, k)
        hooks.sample(ctx)
        hooks.train(ctx)
        t_agg = time.perf_counter()
        hooks.upload(ctx)
        hooks.combine(ctx)
        ctx.aggregate_s += time.perf_counter() - t_agg
        ctx.comm_sim_s += hooks.comm_time(ctx)
    hooks.finish(ctx)
    t_eval = time.perf_counter()
    hooks.evaluate(ctx)
    times = {"t0": ctx.t0, "aggregate_s": ctx.aggregate_s, "eval_s": time.perf_counter() - t_eval}
    acc, loss = ctx.accuracy
    out = row(r, ctx.all_results, ctx.ranks, ctx.comm, ctx.total_sampled, acc, loss, times, ctx.comm_sim_s, exp)
    out.update(threat_columns(exp, cfg, ctx.all_results, r, ctx.out["client_states"], max(ctx.aggregations, 1)))
    if exp.channel is not None:
        out.update(compression_columns(ctx.raw_up, ctx.raw_down, ctx.comm, exp.channel.down))
    return ctx.out, {**out, **ctx.columns, **ctx.extra}
