"""Server optimizers: how the server turns the round's pseudo-gradient into the next global model.

Reddi, Charles, Zaheer, Garrett, Rush, Konečný, Kumar, McMahan. "Adaptive Federated Optimization",
ICLR 2021 (Algorithm 1: FedOpt = any client optimizer x any server optimizer). An algorithm forms the
pseudo-gradient ``g = x - aggregate(y_i)`` (the direction the server descends; ``-Delta`` in the
paper) and calls ``step(server, g) -> (optimizer state, new params)``. The optimizer's state keys
(``velocity``, ``m``, ``v``) live flat in the server state, so they are checkpointed with it:

* ``sgd``:       ``x <- x - lr g`` (FedAvg is ``lr = 1`` on ``g = x - mean(y_i)``).
* ``momentum``:  ``v <- beta v + g``, ``x <- x - lr v`` (FedAvgM; Hsu, Qi, Brown 2019, Section 3).
* ``adagrad`` / ``adam`` / ``yogi`` (FedAdagrad / FedAdam / FedYogi; Reddi et al. Algorithm 2), with
  ``Delta = -g``::

      m <- beta1 m + (1 - beta1) Delta
      v <- v + Delta^2                                   (adagrad)
      v <- v - (1 - beta2) Delta^2 sign(v - Delta^2)     (yogi)
      v <- beta2 v + (1 - beta2) Delta^2                 (adam)
      x <- x + lr m / (sqrt(v) + tau)

  No bias correction and ``v`` starts at ``tau^2`` (the paper's ``v_{-1} >= tau^2``); defaults
  beta1 = 0.9, beta2 = 0.99, tau = 1e-3 are the paper's (Section 5). ``bias_correction=true`` adds
  Adam's correction (Kingma & Ba 2015): step ``lr sqrt(1 - beta2^t) / (1 - beta1^t)`` at server step t
  (Adagrad: ``lr / (1 - beta1^t)``); ``bias_correction=flower`` uses exponent t + 1, as Flower's FedAdam
  computes it from ``server_round + 1``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import Tensor

from fedbench.errors import require, require_choice

State = dict[str, Tensor]
ADAPTIVE = ("adagrad", "adam", "yogi")


def _no_state(params: Tensor) -> State:
    return {}


@dataclass(frozen=True)
class ServerOptimizer:
    """A server optimizer as pure functions.

    Attributes:
        name: short name for logs.
        step: ``(server state, pseudo-gradient) -> (its own state keys, new params)``.
        init: ``params -> its own initial state keys`` (merged into the server state).
        replaces: True for plain SGD with ``lr = 1``: stepping toward a target model lands on it
            exactly, so :func:`move_toward` returns the target itself (FedAvg stays bit-exact).
        options: the factory's options, for logs.
    """

    name: str
    step: Callable[[State, Tensor], "tuple[State, Tensor]"]
    init: Callable[[Tensor], State] = _no_state
    replaces: bool = False
    options: dict = field(default_factory=dict)


def apply(opt: ServerOptimizer, server: State, pseudo_gradient: Tensor) -> State:
    """The new server state after one optimizer step on ``pseudo_gradient``."""
    state, params = opt.step(server, pseudo_gradient)
    return {**server, **state, "params": params}


def move_toward(opt: ServerOptimizer, server: State, target: Tensor) -> State:
    """One step on the pseudo-gradient ``x - target`` (the target is e.g. the mean client model)."""
    if opt.replaces:
        return {**server, "params": target}
    return apply(opt, server, server["params"] - target)


def sgd(lr: float = 1.0) -> ServerOptimizer:
    """Plain server SGD, ``x <- x - lr g``."""
    require(lr > 0, "server_optimizer.lr", "> 0", lr)
    return ServerOptimizer("sgd", lambda server, g: ({}, server["params"] - lr * g), replaces=lr == 1.0,
                           options={"lr": lr})


def momentum(lr: float = 1.0, momentum: float = 0.9) -> ServerOptimizer:
    """Server heavy-ball momentum (FedAvgM), ``v <- beta v + g``, ``x <- x - lr v``."""
    require(lr > 0, "server_optimizer.lr", "> 0", lr)
    require(0 <= momentum < 1, "server_optimizer.momentum", "in [0, 1)", momentum)

    def step(server: State, g: Tensor) -> tuple[State, Tensor]:
        velocity = momentum * server["velocity"] + g
        return {"velocity": velocity}, server["params"] - lr * velocity

    return ServerOptimizer("momentum", step, lambda p: {"velocity": torch.zeros_like(p)},
                           options={"lr": lr, "momentum": momentum})


def second_moment(method: str, v: Tensor, delta: Tensor, beta2: float) -> Tensor:
    """The per-method update of the second-moment estimate ``v``."""
    d2 = delta * delta
    if method == "adagrad":
        return v + d2
    if method == "yogi":
        return v - (1 - beta2) * d2 * torch.sign(v - d2)
    return beta2 * v + (1 - beta2) * d2


def adaptive(method: str, lr: float, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3,
             initial_accumulator: float | None = None, bias_correction: bool | str = False) -> ServerOptimizer:
    """FedAdagrad / FedAdam / FedYogi's server step (``method`` in adagrad, adam, yogi).

    Args:
        method: which second-moment rule.
        lr: server step size (eta).
        beta1, beta2: moment decay rates (beta2 unused by adagrad).
        tau: adaptivity / numerical-stability constant.
        initial_accumulator: ``v``'s start value; null = ``tau^2`` (the paper's convention; Flower starts at 0).
        bias_correction: false (the paper), true (Adam's correction at server step t) or ``flower``.
    """
    require_choice(method, "server_optimizer.method", ADAPTIVE)
    require(lr > 0, "server_optimizer.lr", "> 0", lr)
    require(0 <= beta1 < 1, "server_optimizer.beta1", "in [0, 1)", beta1)
    require(0 <= beta2 <= 1, "server_optimizer.beta2", "in [0, 1]", beta2)
    require(tau > 0, "server_optimizer.tau", "> 0", tau)
    v0 = tau**2 if initial_accumulator is None else initial_accumulator
    require(v0 >= 0, "server_optimizer.initial_accumulator", ">= 0 or null (tau^2)", v0)
    require_choice(bias_correction, "server_optimizer.bias_correction", [False, True, "flower"])

    def init(params: Tensor) -> State:
        state = {"m": torch.zeros_like(params), "v": torch.full_like(params, v0)}
        return {**state, "t": torch.zeros((), device=params.device)} if bias_correction else state

    def step(server: State, g: Tensor) -> tuple[State, Tensor]:
        delta = -g
        m = beta1 * server["m"] + (1 - beta1) * delta
        v = second_moment(method, server["v"], delta, beta2)
        if not bias_correction:
            return {"m": m, "v": v}, server["params"] + lr * m / (v.sqrt() + tau)
        t = server["t"] + 1
        power = float(t) + (1 if bias_correction == "flower" else 0)
        second = math.sqrt(1 - beta2**power) if method != "adagrad" else 1.0
        rate = lr * second / (1 - beta1**power) if beta1 > 0 else lr * second
        return {"m": m, "v": v, "t": t}, server["params"] + rate * m / (v.sqrt() + tau)

    options = {"lr": lr, "beta1": beta1, "beta2": beta2, "tau": tau, "initial_accumulator": v0,
               "bias_correction": bias_correction}
    return ServerOptimizer(method, step, init, options=options)


def adam(lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3,
         initial_accumulator: float | None = None, bias_correction: bool | str = False) -> ServerOptimizer:
    """FedAdam's server step; see :func:`adaptive`."""
    return adaptive("adam", lr, beta1, beta2, tau, initial_accumulator, bias_correction)


def yogi(lr: float = 0.01, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3,
         initial_accumulator: float | None = None, bias_correction: bool | str = False) -> ServerOptimizer:
    """FedYogi's server step; see :func:`adaptive`."""
    return adaptive("yogi", lr, beta1, beta2, tau, initial_accumulator, bias_correction)


def adagrad(lr: float = 0.1, beta1: float = 0.9, beta2: float = 0.99, tau: float = 1e-3,
            initial_accumulator: float | None = None, bias_correction: bool | str = False) -> ServerOptimizer:
    """FedAdagrad's server step; see :func:`adaptive`."""
    return adaptive("adagrad", lr, beta1, beta2, tau, initial_accumulator, bias_correction)
