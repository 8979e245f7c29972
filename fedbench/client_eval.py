"""Per-client evaluation: the distribution of the global model's accuracy over clients.

Fairness and personalization papers report how the global model does on each client's own data, not only on
the pooled test set: LEAF (Caldas et al. 2018) prints the 10th, 50th and 90th percentiles of the per-client
accuracy next to the average; q-FFL (Li, Sanjabi, Beirami, Smith, ICLR 2020) the worst and the 10th percentile.
Every evaluated round then also records, over a fixed set of clients:

* ``client_accuracy_mean``: the unweighted mean of the clients' accuracies (each client counts once; the pooled
  ``test_accuracy`` weights clients by their test size instead);
* ``client_accuracy_p10``, ``client_accuracy_p50``, ``client_accuracy_p90``: percentiles (NumPy's linear
  interpolation), and ``client_accuracy_min``: the worst client;
* ``client_accuracy_var``: the variance of the clients' accuracies (population variance, accuracies in [0, 1]): the
  fairness measure of q-FFL's paper;
* ``clients_evaluated``: how many clients these are.

Personalization methods (an algorithm that declares ``personalize``: Ditto, FedRep/FedPer, fine-tuning; or
``task.local_buffers``, FedBN's own BatchNorm statistics) are also scored with each client's *personal* model on
the same data: ``personal_accuracy_mean``, ``_p10``, ``_p50`` and ``_min`` (:func:`personal_columns`; the models come
from :func:`fedbench.client.personal_model`, called by the round's evaluate stage).

A client's test data is its own test split where the dataset has one and the clients are its users (LEAF, or
``dataset=hf`` with ``client_key``, under ``partitioner=natural``): ``eval.per_client=auto`` (the default) turns the
columns on exactly then. ``eval.per_client=true`` also works on any other dataset or partition: it holds out
``eval.test_fraction`` of each client's local data (seeded, never trained on). ``eval.max_clients`` bounds the cost:
a seeded subset of that many clients, drawn once, is evaluated every round, so the curves are comparable. The
global model is evaluated with the same buffers as on the test set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

from fedbench.data.base import FederatedData
from fedbench.errors import require, require_choice
from fedbench.local import evaluate
from fedbench.seeding import numpy_generator

MODES = ("auto", True, False)
COLUMNS = ("client_accuracy_mean", "client_accuracy_p10", "client_accuracy_p50", "client_accuracy_p90",
           "client_accuracy_min", "client_accuracy_var", "clients_evaluated")
PERSONAL_COLUMNS = ("personal_accuracy_mean", "personal_accuracy_p10", "personal_accuracy_p50", "personal_accuracy_min")
DEFAULTS = {"per_client": "auto", "test_fraction": 0.2, "max_clients": 100}


@dataclass(frozen=True)
class ClientEval:
    """The clients evaluated every round and their test data (on the run's device).

    Attributes:
        clients: client ids, sorted.
        data: each one's ``(x, y)``.
        source: ``users`` (the dataset's per-user test splits) or ``held_out`` (``eval.test_fraction`` of each
            client's local data).
    """

    clients: tuple[int, ...]
    data: tuple[tuple[Tensor, Tensor], ...]
    source: str


def _options(node: Mapping[str, Any] | None) -> dict[str, Any]:
    opts = {**DEFAULTS, **(dict(node) if node else {})}
    unknown = sorted(set(opts) - set(DEFAULTS))
    require(not unknown, f"eval.{unknown[0] if unknown else ''}", f"one of the eval options {list(DEFAULTS)}", unknown)
    require_choice(opts["per_client"], "eval.per_client", MODES)
    tf = opts["test_fraction"]
    require(isinstance(tf, (int, float)) and not isinstance(tf, bool) and 0 < tf < 1, "eval.test_fraction", "in (0, 1)", tf)
    mc = opts["max_clients"]
    require(mc is None or (isinstance(mc, int) and not isinstance(mc, bool) and mc >= 1), "eval.max_clients",
            "null (every client) or an integer >= 1", mc)
    return opts


def natural_clients(data: FederatedData, parts: Sequence[np.ndarray]) -> bool:
    """Whether the clients are the dataset's users and each has its own test split."""
    if data.test_groups is None or data.groups is None or len(parts) != len(data.groups):
        return False
    return all(np.array_equal(p, g) for p, g in zip(parts, data.groups))


def _subset(candidates: Sequence[int], max_clients: int | None, seed: int) -> list[int]:
    if max_clients is None or len(candidates) <= max_clients:
        return list(candidates)
    chosen = numpy_generator(seed, "client-eval").choice(len(candidates), max_clients, replace=False)
    return sorted(candidates[i] for i in chosen)


def _hold_out(parts: Sequence[np.ndarray], fraction: float, seed: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Each client's (kept, held-out) indices: ``round(fraction * n)`` held out, at least one sample kept."""
    kept, held = [], []
    for c, part in enumerate(parts):
        n_out = min(int(round(fraction * len(part))), len(part) - 1)
        order = numpy_generator(seed, c, "client-eval-split").permutation(len(part))
        held.append(np.sort(part[order[:n_out]]))
        kept.append(np.sort(part[order[n_out:]]))
    return kept, held


def plan_client_eval(node: Mapping[str, Any] | None, data: FederatedData, parts: list[np.ndarray], seed: int,
                     device: torch.device, topology: str = "star",
                     evaluates_clients: bool = True) -> tuple[list[np.ndarray], ClientEval | None]:
    """The training partition (smaller by the held-out data with ``per_client=true`` on a dataset without per-user
    test splits) and the evaluation plan (None when off). Checks the ``eval`` options first; ``per_client=true``
    is refused on a topology that does not declare ``evaluates_clients`` (one global model to evaluate)."""
    opts = _options(node)
    require(opts["per_client"] is not True or evaluates_clients, "eval.per_client",
            f"auto or false with topology={topology} (it does not declare evaluates_clients: per-client evaluation "
            "scores one global model on each client's data)", opts["per_client"])
    if opts["per_client"] is False or not evaluates_clients or \
            (opts["per_client"] == "auto" and not natural_clients(data, parts)):
        return parts, None
    if natural_clients(data, parts):
        tests = data.test_groups
        candidates = [c for c, g in enumerate(tests) if len(g)]
        chosen = _subset(candidates, opts["max_clients"], seed)
        pairs = [(data.x_test[tests[c]], data.y_test[tests[c]]) for c in chosen]
        source = "users"
    else:
        parts, held = _hold_out(parts, opts["test_fraction"], seed)
        chosen = _subset([c for c, h in enumerate(held) if len(h)], opts["max_clients"], seed)
        pairs = [(data.x_train[held[c]], data.y_train[held[c]]) for c in chosen]
        source = "held_out"
    moved = tuple((x.to(device), y.to(device)) for x, y in pairs)
    return parts, ClientEval(tuple(chosen), moved, source)


def client_columns(exp: Any, params: Tensor, buffers: Tensor | None = None) -> dict[str, float]:
    """The per-client accuracy columns of ``params`` (empty when per-client evaluation is off)."""
    plan: ClientEval | None = getattr(exp, "client_eval", None)
    if plan is None or not plan.data:
        return {}
    acc = np.array([evaluate(exp.task, params, x, y, buffers=buffers)[0] for x, y in plan.data])
    return {"client_accuracy_mean": float(acc.mean()), "client_accuracy_p10": float(np.percentile(acc, 10)),
            "client_accuracy_p50": float(np.percentile(acc, 50)), "client_accuracy_p90": float(np.percentile(acc, 90)),
            "client_accuracy_min": float(acc.min()), "client_accuracy_var": float(acc.var()),
            "clients_evaluated": len(acc)}


def personal_columns(exp: Any, models: Sequence[tuple[Tensor, Tensor | None]]) -> dict[str, float]:
    """The personalized accuracy columns: each evaluated client's own ``(params, buffers)`` (in ``clients`` order)
    on its own test data."""
    plan: ClientEval | None = getattr(exp, "client_eval", None)
    if plan is None or not plan.data:
        return {}
    acc = np.array([evaluate(exp.task, p, x, y, buffers=b)[0] for (p, b), (x, y) in zip(models, plan.data)])
    return {"personal_accuracy_mean": float(acc.mean()), "personal_accuracy_p10": float(np.percentile(acc, 10)),
            "personal_accuracy_p50": float(np.percentile(acc, 50)), "personal_accuracy_min": float(acc.min())}
