"""The stages of a round, each a function the round driver (:mod:`fedbench.round`) calls in order: who takes part
(:func:`participants`), their local work on the backend with the threat model's attacks (:func:`local_work`), their
uploads through the algorithm, buffers and compression (:func:`make_uploads`), the combine and server step
(:func:`server_step`), and evaluation (:func:`evaluate_model`).

A client's persistent state has named fields, each owned by one part (empty ones are left out):
``{"algorithm": <the algorithm's own state>, "channel": <the compression channel's>, "privacy": {"steps": ...},
"buffers": <local BatchNorm statistics>}``. Only the ``algorithm`` field reaches the algorithm's functions.

Buffers (BatchNorm statistics) travel next to the parameters: by default the server keeps their sample-weighted
mean under ``server["buffers"]``, broadcasts it and counts it both ways. With ``task.local_buffers`` (FedBN, Li et
al. 2021) they stay in each client's state and never travel; the global test-set evaluation then uses the round's
sample-weighted mean of the clients' buffers (a measurement only: it is neither sent nor kept).
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any, Callable, Sequence

import torch
from omegaconf import DictConfig

from fedbench.aggregators import Combine
from fedbench.algorithms.base import LocalResult, State, Upload
from fedbench.attacks import poison_results
from fedbench.client import personal_model, run_client
from fedbench.client_eval import personal_columns
from fedbench.experiment import Experiment
from fedbench.local import evaluate
from fedbench.metrics import COLUMNS
from fedbench.params import weighted_mean
from fedbench.sampling import sample_clients
from fedbench.seeding import numpy_generator
from fedbench.workload import Workload, assign_work

ClientState = dict[str, Any]


def algorithm_state(state: ClientState) -> State:
    """The algorithm's own field of a client's state (what its ``local_loss`` and ``client_upload`` see)."""
    return state.get("algorithm", {})


def compact(state: ClientState) -> ClientState:
    """A client state without its empty fields."""
    return {k: v for k, v in state.items() if not (isinstance(v, dict) and not v)}


def dropped_out(clients: Sequence[int], dropout: float, seed: int, r: int) -> frozenset[int]:
    """The sampled clients that fail in round ``r`` (each with probability ``dropout``, keyed by
    (seed, round, client)): they receive the model and never report."""
    if dropout <= 0:
        return frozenset()
    return frozenset(c for c in clients if numpy_generator(seed, r, c, "dropout").random() < dropout)


def participants(exp: Experiment, cfg: DictConfig, r: int, client_states: dict[int, ClientState],
                 server_of: Callable[[int], State]) -> tuple[list[int], Workload, list[int], dict[int, ClientState]]:
    """Round ``r``'s sampled clients, their work, those whose work arrives (dropped stragglers miss the deadline and
    failed clients, ``dropout``, never report: both got the model), and those clients' states (a never-seen client's
    algorithm field from ``init_client``)."""
    alg = exp.algorithm
    clients = sample_clients(cfg.num_clients, cfg.client_fraction, cfg.seed, r, exp.sampling)
    work = assign_work(clients, r, cfg.seed, cfg.local_epochs, cfg.local_epochs_max, cfg.straggler_fraction)
    failed = dropped_out(clients, exp.threat.dropout, cfg.seed, r)
    active = [c for c in clients if not (alg.drop_stragglers and c in work.stragglers) and c not in failed]
    states = {c: client_states[c] if c in client_states else compact({"algorithm": alg.init_client(server_of(c))})
              for c in active}
    return clients, work, active, states


def local_work(exp: Experiment, work: Workload, r: int, clients: Sequence[int], start: Callable[[int], State],
               states: dict[int, ClientState]) -> tuple[list[LocalResult], list[dict[str, Any]]]:
    """Run ``clients``' local work on the backend, each from the model ``start(c)`` (a server state, buffers
    included) with its client state, then the threat model's attack on the results; returns the results and
    per-rank timings."""

    def job(c: int) -> LocalResult:
        model = start(c)
        buffers = states[c].get("buffers", model.get("buffers")) if exp.local_buffers else model.get("buffers")
        return run_client(exp.task, exp.algorithm, exp.plan, exp.client_data[c], model, algorithm_state(states[c]), c,
                          r, work.epochs[c], buffers)

    if exp.backend.train_many is not None:  # backend=vectorized: the clients train at once
        own = {c: algorithm_state(s) for c, s in states.items()}
        results = exp.backend.train_many(exp, work.epochs, r, list(clients), start, own)
    else:
        results = exp.backend.map(job, list(clients))
    attack = exp.threat.attack
    if attack is not None and attack.poison is not None:
        results = poison_results(attack, exp.threat.byzantine, results, start, r, exp.algorithm.work == "gradient")
    return results, [dict(t) for t in exp.backend.rank_times]


def make_uploads(exp: Experiment, server_of: Callable[[int], State], results: Sequence[LocalResult],
                 states: dict[int, ClientState], client_states: dict[int, ClientState], r: int = 0) -> list[Upload]:
    """Each result's upload to its server (buffers attached unless kept local), through the compressor when there
    is one; the clients' new states (each field updated by its owner) go into ``client_states``."""
    uploads = []
    privacy = exp.threat.privacy
    for res in results:
        old = states[res.client]
        upload, own = exp.algorithm.client_upload(server_of(res.client), res, algorithm_state(old))
        state = {**old, "algorithm": own}
        if privacy is not None and privacy.per_sample:  # local DP-SGD: released steps count toward epsilon
            state["privacy"] = {"steps": old.get("privacy", {}).get("steps", torch.zeros((), dtype=torch.int64))
                                + res.steps}
        if res.buffers is not None and exp.local_buffers:
            state["buffers"] = res.buffers
        elif res.buffers is not None:
            upload = replace(upload, tensors={**upload.tensors, "buffers": res.buffers})
        if exp.channel is not None:
            upload, state["channel"] = exp.channel.upload(upload, server_of(res.client), state.get("channel", {}), r)
        client_states[res.client] = compact(state)
        uploads.append(upload)
    return uploads


def mean_buffers(results: Sequence[LocalResult]) -> Any:
    """Sample-weighted mean of the clients' buffers (None for models without buffers)."""
    if not results or results[0].buffers is None:
        return None
    return weighted_mean([r.buffers for r in results], [r.num_samples for r in results])


def mean_logged(results: Sequence[LocalResult]) -> dict[str, float]:
    """Each ``self.log`` name's sample-weighted mean over the clients that logged it; a name that clashes with a
    built-in column is kept as ``task_<name>``."""
    names = dict.fromkeys(k for r in results for k in r.logged)
    out = {}
    for name in names:
        who = [r for r in results if name in r.logged]
        value = sum(r.logged[name] * r.num_samples for r in who) / sum(r.num_samples for r in who)
        out[f"task_{name}" if name in COLUMNS else name] = value
    return out


def broadcast_keys(exp: Experiment, server: State) -> tuple[str, ...]:
    """The server-state keys each sampled client downloads (the buffers too unless kept local)."""
    return (*exp.algorithm.broadcast, "buffers") if "buffers" in server and not exp.local_buffers else exp.algorithm.broadcast


def server_step(exp: Experiment, server: State, uploads: Sequence[Upload], buffers: Any,
                combine: Combine | None = None) -> tuple[State, dict[str, Any]]:
    """The algorithm's server update (through ``combine`` for algorithms that average their uploads), and the
    averaged buffers unless they are kept local."""
    if combine is not None and exp.algorithm.averages_uploads:
        server, extra = exp.algorithm.server_update(server, uploads, combine)
    else:
        server, extra = exp.algorithm.server_update(server, uploads)
    if buffers is not None and not exp.local_buffers:
        server = {**server, "buffers": buffers}
    return server, extra


def eval_buffers(exp: Experiment, server: State, results: Sequence[LocalResult]) -> Any:
    """Buffers for evaluating ``server``'s model: its own, or with local buffers the round's mean."""
    buffers = mean_buffers(results) if exp.local_buffers else None
    return buffers if buffers is not None else server.get("buffers")


def evaluates(exp: Experiment, cfg: DictConfig, r: int) -> bool:
    """Whether round ``r`` is evaluated: on rank 0, every ``eval_every`` rounds and after the last."""
    return exp.backend.is_main and (r % cfg.eval_every == 0 or r == cfg.rounds)


def evaluate_model(exp: Experiment, cfg: DictConfig, r: int, server: State,
                   results: Sequence[LocalResult]) -> tuple[float, float]:
    """(accuracy, loss) of ``server``'s model on the test set in an evaluated round (:func:`evaluates`); (nan, nan)
    otherwise."""
    if not evaluates(exp, cfg, r):
        return math.nan, math.nan
    return evaluate(exp.task, server["params"], exp.data.x_test, exp.data.y_test,
                    buffers=eval_buffers(exp, server, results))


def personal_evaluation(exp: Experiment, cfg: DictConfig, r: int, server: State, client_states: dict[int, ClientState],
                        results: Sequence[LocalResult]) -> dict[str, float]:
    """The ``personal_accuracy_*`` columns (:mod:`fedbench.client_eval`) for an algorithm that declares
    ``personalize`` or a task with local buffers (FedBN): each evaluated client's personal model
    (:func:`fedbench.client.personal_model`) with its own buffers. A client never sampled yet has no personal state:
    the algorithm's ``personalize`` sees an empty one (Ditto, FedRep: the global model; fine-tuning: the global model
    fine-tuned on its data) and it uses the global buffers."""
    alg, plan = exp.algorithm, exp.client_eval
    if plan is None or not plan.data or (alg.personalize is None and not exp.local_buffers):
        return {}
    shared = eval_buffers(exp, server, results)
    models = []
    for c in plan.clients:
        state = client_states.get(c, {})
        buffers = state.get("buffers", shared) if exp.local_buffers else shared
        models.append((personal_model(exp.task, alg, exp.plan, exp.client_data[c], server, algorithm_state(state), c, r,
                                      cfg.local_epochs, buffers), buffers))
    return personal_columns(exp, models)
