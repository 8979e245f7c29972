"""Where compression sits: every upload (and, for ``direction`` down/both, the broadcast) goes through
a compressor on its way, with error feedback and exact wire bytes.

* **Up** (client -> server, client -> edge): each uploaded tensor is compressed. Absolute models
  (``weights``, ``buffers``) are compressed as their difference from the broadcast model and rebuilt
  as ``broadcast + decoded``; everything else (pseudo-gradients, SCAFFOLD's deltas, FedNova's d) as
  is. Scalars (FedNova's ``a_norm``) stay fp32.
* **Error feedback** (``error_feedback: ef``, Seide et al. 2014 / Karimireddy et al. 2019): the client
  adds its residual ``e`` before compressing, ``c = C(v + e)``, and keeps ``e <- v + e - c``. With
  ``ef21`` (Richtarik, Sokolov, Fatkhullin, "EF21", NeurIPS 2021) it keeps the last estimate ``h``,
  sends ``c = C(v - h)`` and both sides set ``h <- h + c`` (the server's copy equals the client's, so
  the simulation reads it from the client state). Residuals live in the client state's ``channel`` field (named
  ``residual``, ``estimate`` and ``compressor``, each by tensor): checkpointed.
  Both need a contractive compressor (``E||C(x) - x||^2 <= (1 - delta) ||x||^2``): with a rescaled, unbiased one
  (rand-k's d / k, QSGD) the residual grows without bound (measured: 3e6 times the input after 20 rounds with
  rand-k). Such a combination is refused before any work; ``compressor.rescale=false`` gives the contractive
  variant ``C / (1 + omega)`` that Stich et al. 2018 pair with memory.
* **Down** (server -> clients): clients hold the model as they last received it (``view`` in the
  server state); the server sends ``C(x - view)`` and everyone sets ``view <- view + decoded``:
  clients train from ``view`` (the difference it leaves is fed back next round, error feedback by
  construction). This assumes every client receives every broadcast; bytes are counted for the
  sampled ones.
* **Gossip** compresses the exchanged models as CHOCO-SGD does (Koloskova, Stich, Jaggi, ICML 2019):
  see :mod:`fedbench.topology.gossip`.

Every draw comes from a generator keyed by (seed, round, client, tensor), so backends agree.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from omegaconf import DictConfig, OmegaConf
from torch import Tensor

from fedbench.algorithms.base import State, Upload
from fedbench.compress import Compressor, roundtrip
from fedbench.errors import ConfigError, require, require_choice
from fedbench.parts import build_part
from fedbench.params import nbytes
from fedbench.seeding import torch_generator

ABSOLUTE = {"weights": "params", "buffers": "buffers"}  # upload key -> the broadcast it is relative to
DIRECTIONS = ("up", "down", "both")
FEEDBACK = (False, True, "ef", "ef21")


@dataclass(frozen=True)
class Channel:
    """A compressor on the upload and/or download path (see the module docstring)."""

    compressor: Compressor
    direction: str = "up"
    error_feedback: str | None = None  # None | "ef" | "ef21"
    seed: int = 0
    shapes: tuple = ()

    @property
    def up(self) -> bool:
        return self.direction in ("up", "both")

    @property
    def down(self) -> bool:
        return self.direction in ("down", "both")

    def send(self, x: Tensor, purpose: str, r: int, who: int, state: State, key: str) -> tuple[Tensor, int, State]:
        """Compress ``x`` (with the sender's error feedback for ``key``); returns (what arrives, wire bytes, the
        sender's new channel state: ``{"residual": {key: e}, "estimate": {key: h}, "compressor": {key: {...}}}``)."""
        if x.numel() <= 1:
            return x, 4 * x.numel(), state
        gen = torch_generator(self.seed, r, who, purpose, key)
        cstate = state.get("compressor", {}).get(key, {})
        shapes = list(self.shapes) if sum(_numel(s) for s in self.shapes) == x.numel() else None
        residual, estimate = dict(state.get("residual", {})), dict(state.get("estimate", {}))
        if self.error_feedback == "ef21":
            h = estimate.get(key, x.new_zeros(x.shape))
            c, wire, cstate = roundtrip(self.compressor, x - h, gen, cstate, shapes)
            out = estimate[key] = h + c
        elif self.error_feedback == "ef":
            v = x + residual.get(key, x.new_zeros(x.shape))
            out, wire, cstate = roundtrip(self.compressor, v, gen, cstate, shapes)
            residual[key] = v - out
        else:
            out, wire, cstate = roundtrip(self.compressor, x, gen, cstate, shapes)
        compressor = {**state.get("compressor", {}), **({key: cstate} if cstate else {})}
        new = {"residual": residual, "estimate": estimate, "compressor": compressor}
        return out, wire, {k: v for k, v in new.items() if v}

    def upload(self, upload: Upload, server: State, state: State, r: int) -> tuple[Upload, State]:
        """Compress an upload's tensors; the Upload records its wire bytes."""
        if not self.up:
            return upload, state
        tensors, wire = {}, 0
        for key, t in upload.tensors.items():
            ref = server.get(ABSOLUTE[key]) if key in ABSOLUTE else None
            sent, size, state = self.send(t if ref is None else t - ref, "up", r, upload.client, state, key)
            tensors[key], wire = (sent if ref is None else ref + sent), wire + size
        return replace(upload, tensors=tensors, wire_bytes=wire), state

    def broadcast(self, server: State, keys: tuple[str, ...], r: int) -> tuple[State, State, int]:
        """(the server state clients train from, the new server state, bytes per receiver)."""
        if not self.down:
            return server, server, nbytes({k: server[k] for k in keys})
        view = server.get("view", server["params"])
        sent, wire, _ = self.send(server["params"] - view, "down", r, 0, {}, "params")  # one message for all
        view = view + sent
        wire += nbytes({k: server[k] for k in keys if k != "params"})
        return {**server, "params": view}, {**server, "view": view}, wire


def _numel(shape: Any) -> int:
    n = 1
    for d in shape:
        n *= int(d)
    return n


def compressor_of(node: DictConfig) -> Compressor:
    """The ``compressor`` config's Compressor (the channel's own keys, ``direction`` and ``error_feedback``, left out)."""
    spec = OmegaConf.to_container(node, resolve=True)
    spec.pop("direction", None), spec.pop("error_feedback", None)
    compressor = build_part(OmegaConf.create(spec), field="compressor")
    require(isinstance(compressor, Compressor), "compressor", "a Compressor factory", type(compressor).__name__)
    return compressor


def build_channel(node: DictConfig, seed: int, shapes: list) -> Channel | None:
    """The ``compressor`` config as a Channel (None for the identity: the uncompressed path, untouched)."""
    direction, feedback = node.get("direction", "up"), node.get("error_feedback", False)
    require_choice(direction, "compressor.direction", list(DIRECTIONS))
    require_choice(feedback, "compressor.error_feedback", FEEDBACK)
    compressor = compressor_of(node)
    if compressor.identity:
        return None
    ef = {True: "ef", False: None}.get(feedback, feedback)
    if ef is not None and compressor.unbiased:
        raise ConfigError(f"compressor.error_feedback: {ef} needs a contractive compressor, but {compressor.name} "
                          f"rescales its output to be unbiased, which makes the error-feedback residual grow without "
                          f"bound; set compressor.rescale=false (the contractive C/(1+omega) variant, Stich et al. "
                          f"2018) or compressor.error_feedback=false")
    if compressor.needs_shapes:
        require(any(len(s) >= 2 for s in shapes), "compressor", f"a model with weight matrices for {compressor.name} "
                "(it needs_shapes: it compresses weight matrices)", "none")
    return Channel(compressor, direction, ef, seed, tuple(tuple(s) for s in shapes))
