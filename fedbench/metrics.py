"""Per-round metric rows and the run summary (what reports and HPO read)."""

from __future__ import annotations

import math
from typing import Any, Sequence

from fedbench.provenance import provenance

COLUMNS = (
    "round", "test_accuracy", "test_loss", "train_loss", "clients", "steps",
    "messages_up", "messages_down", "bytes_up", "bytes_down",
    "cum_messages_up", "cum_messages_down", "cum_bytes_up", "cum_bytes_down",
    "compute_s", "aggregate_s", "eval_s", "comm_s", "idle_s", "comm_sim_s", "sim_round_s", "cum_sim_round_s",
    "wall_s", "cum_wall_s",
)
_CUMULATIVE = ("messages_up", "messages_down", "bytes_up", "bytes_down", "sim_round_s", "wall_s")
# measured wall-clock columns: never repeat exactly between two runs (every other column does)
TIMING_COLUMNS = ("compute_s", "aggregate_s", "eval_s", "comm_s", "idle_s", "sim_round_s", "cum_sim_round_s",
                  "wall_s", "cum_wall_s")
RANK_COLUMNS = ("round", "rank", "compute_s", "wait_s", "comm_s")


def columns(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The standard :data:`COLUMNS`, then every other scalar column of ``rows`` in first-seen order
    (metrics are open: algorithms, topologies, compressors and tasks add their own)."""
    extra = dict.fromkeys(k for row in rows for k, v in row.items()
                          if k not in COLUMNS and (v is None or isinstance(v, (int, float, str, bool))))
    return [*COLUMNS, *extra]


def with_cumulative(row: dict[str, Any], previous: dict[str, Any] | None) -> dict[str, Any]:
    """Add ``cum_*`` columns: running totals of messages and bytes."""
    out = dict(row)
    for key in _CUMULATIVE:
        if key in row:
            out[f"cum_{key}"] = row[key] + (previous[f"cum_{key}"] if previous else 0)
    return out


def diverged(row: dict[str, Any], threshold: float | None) -> bool:
    """A round that trained (took steps) and whose training loss is not finite or above ``threshold``
    (the ``diverge_loss`` knob; None: non-finite only)."""
    loss = row.get("train_loss", math.nan)
    if not row.get("steps"):
        return False
    return not math.isfinite(loss) or (threshold is not None and loss > threshold)


def rounds_to_target(rows: Sequence[dict[str, Any]], target: float | None) -> int | None:
    """First round whose test accuracy reaches ``target`` (None if never or no target)."""
    if target is None:
        return None
    return next((r["round"] for r in rows if _finite(r["test_accuracy"]) and r["test_accuracy"] >= target), None)


def _finite(value: Any) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def summarize(rows: Sequence[dict[str, Any]], target: float | None, extra: dict[str, Any]) -> dict[str, Any]:
    """Final/best accuracy, rounds to target, totals, and where the numbers come from (:mod:`fedbench.provenance`)."""
    evaluated = [r for r in rows if _finite(r["test_accuracy"])]
    best = max(evaluated, key=lambda r: r["test_accuracy"], default=None)
    last = rows[-1] if rows else {}
    return {
        **extra,
        "provenance": provenance(),
        # measured: counted from the tensors the run sent; a backend that cannot see its traffic says nominal
        "bytes_source": extra.get("bytes_source", "measured"),
        "rounds_completed": len(rows),
        "final_accuracy": evaluated[-1]["test_accuracy"] if evaluated else None,
        "final_loss": evaluated[-1]["test_loss"] if evaluated else None,
        "best_accuracy": best["test_accuracy"] if best else None,
        "best_round": best["round"] if best else None,
        "target_accuracy": target,
        "rounds_to_target": rounds_to_target(rows, target),
        "total_messages_up": last.get("cum_messages_up", 0),
        "total_messages_down": last.get("cum_messages_down", 0),
        "total_bytes_up": last.get("cum_bytes_up", 0),
        "total_bytes_down": last.get("cum_bytes_down", 0),
        **{f"total_{k}": sum(r.get(k, 0.0) for r in rows)
           for k in ("compute_s", "aggregate_s", "eval_s", "comm_s", "idle_s", "comm_sim_s", "sim_round_s", "wall_s")},
        **_compression(rows, last),
    }


def _compression(rows: Sequence[dict[str, Any]], last: dict[str, Any]) -> dict[str, Any]:
    """The whole run's fp32-equivalent bytes and ``compression_ratio`` (fp32 / wire bytes of the
    compressed direction: uploads, and the broadcast when it was compressed too) with a compressor."""
    if not rows or "raw_bytes_up" not in rows[-1]:
        return {}
    up, down = sum(r.get("raw_bytes_up", 0) for r in rows), sum(r.get("raw_bytes_down", 0) for r in rows)
    wire_up, wire_down = last.get("cum_bytes_up", 0), last.get("cum_bytes_down", 0)
    both = wire_down < down  # the broadcast was compressed too
    raw, wire = up + (down if both else 0), wire_up + (wire_down if both else 0)
    return {"total_raw_bytes_up": up, "total_raw_bytes_down": down, "compression_ratio": raw / wire if wire else None}
