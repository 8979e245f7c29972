"""Checks of the flat top-level knobs, run before any work starts.

Component options (``algorithm.*``, ``partitioner.*``, ``dataset.*``) are checked by their own
factories when ``run`` builds them, which also happens before the first round.
"""

from __future__ import annotations

from typing import Any, Mapping

from fedbench.device import DEFAULT, check_device
from fedbench.errors import require, require_choice
from fedbench.sampling import CHOICES as SAMPLING_CHOICES


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def validate_knobs(cfg: Mapping[str, Any]) -> None:
    """Raise ConfigError naming the first bad field and its allowed range."""
    require(is_int(cfg["seed"]) and cfg["seed"] >= 0, "seed", "an integer >= 0", cfg["seed"])
    check_device(cfg.get("device", DEFAULT))
    require(is_int(cfg["rounds"]) and cfg["rounds"] >= 1, "rounds", "an integer >= 1", cfg["rounds"])
    require(is_int(cfg["num_clients"]) and cfg["num_clients"] >= 1, "num_clients", "an integer >= 1", cfg["num_clients"])
    c = cfg["client_fraction"]
    require(is_num(c) and 0 < c <= 1, "client_fraction", "in (0, 1]", c)
    require_choice(cfg.get("client_sampling", "auto"), "client_sampling", SAMPLING_CHOICES)
    e = cfg["local_epochs"]
    require(is_int(e) and e >= 1, "local_epochs", "an integer >= 1", e)
    b = cfg["batch_size"]
    require(b is None or (is_int(b) and b >= 1), "batch_size", "an integer >= 1 or null (full local batch)", b)
    require(is_num(cfg["lr"]) and cfg["lr"] > 0, "lr", "> 0", cfg["lr"])
    require(is_num(cfg["momentum"]) and 0 <= cfg["momentum"] < 1, "momentum", "in [0, 1)", cfg["momentum"])
    require(is_num(cfg["weight_decay"]) and cfg["weight_decay"] >= 0, "weight_decay", ">= 0", cfg["weight_decay"])
    ev = cfg["eval_every"]
    require(is_int(ev) and ev >= 1, "eval_every", "an integer >= 1", ev)
    em = cfg["local_epochs_max"]
    require(em is None or (is_int(em) and em >= e), "local_epochs_max", f"null or an integer >= local_epochs ({e})", em)
    sf = cfg["straggler_fraction"]
    require(is_num(sf) and 0 <= sf <= 1, "straggler_fraction", "in [0, 1]", sf)
    do = cfg.get("dropout", 0.0)
    require(is_num(do) and 0 <= do < 1, "dropout", "in [0, 1)", do)
    ce = cfg["checkpoint_every"]
    require(is_int(ce) and ce >= 0, "checkpoint_every", "an integer >= 0 (0 = never)", ce)
    t = cfg["target_accuracy"]
    require(t is None or (is_num(t) and 0 <= t <= 1), "target_accuracy", "in [0, 1] or null", t)
    dl = cfg.get("diverge_loss")
    require(dl is None or (is_num(dl) and dl > 0), "diverge_loss", "null or > 0", dl)
    st = cfg["stop_at_target"]
    require(isinstance(st, bool), "stop_at_target", "true or false", st)
    require(not st or t is not None, "stop_at_target", "false when target_accuracy is null", st)

    sp = cfg["client_speed"]
    st = sp.get("step_time_s")
    require(st is None or (is_num(st) and st > 0), "client_speed.step_time_s", "null (measured) or > 0", st)
    require(is_num(sp["sigma"]) and sp["sigma"] >= 0, "client_speed.sigma", ">= 0", sp["sigma"])
    f = sp["factors"]
    require(f is None or (len(f) == cfg["num_clients"] and all(is_num(v) and v > 0 for v in f)),
            "client_speed.factors", f"null or a list of num_clients ({cfg['num_clients']}) numbers > 0", f)


def validate_sizes(num_clients: int, num_samples: int) -> None:
    """``num_clients`` cannot exceed the training samples (every client needs data)."""
    require(num_clients <= num_samples, "num_clients", f"<= the {num_samples} training samples", num_clients)
