"""How the report's figures look: seaborn's paper context, legends inside the canvas, groups as colour (and a second
varied setting as line style), integer round ticks, a spread band only where a group has several seeds, and every
figure written as PNG (300 dpi), PDF and SVG side by side.

The long table of per-round metrics (:func:`fedbench.report.systems_report.collect`) carries the groups as columns
``hue`` and ``style``, and their names in ``metrics.attrs["hue_title"]`` / ``["style_title"]`` (the varied settings:
``algorithm``, or ``algorithm`` and ``lr``).
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import matplotlib

if "inline" not in str(matplotlib.rcParams["backend"]):  # files only; a notebook keeps showing its figures
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

FORMATS = (".png", ".pdf", ".svg")
DPI = 300
PAPER = {"context": "paper", "style": "whitegrid", "font_scale": 1.1}


def figure(width: float, height: float, rows: int = 1, cols: int = 1, **kwargs: Any) -> tuple[plt.Figure, Any]:
    """A figure in the paper style whose layout keeps every legend and label inside the canvas."""
    with sns.axes_style(PAPER["style"]), sns.plotting_context(PAPER["context"], font_scale=PAPER["font_scale"]):
        return plt.subplots(rows, cols, figsize=(width, height), layout="constrained", **kwargs)


def save(fig: plt.Figure, path: Path) -> Path:
    """Write ``path`` (PNG, 300 dpi) and the PDF and SVG beside it; return the PNG's path."""
    path = Path(path)
    for suffix in FORMATS:
        fig.savefig(path.with_suffix(suffix), dpi=DPI)
    plt.close(fig)
    return path.with_suffix(".png")


def legend(ax: plt.Axes, title: str | None = None, width: int = 34) -> None:
    """Move ``ax``'s legend (if any) to the figure's right edge, inside the canvas; long labels wrapped."""
    handles, labels = ax.get_legend_handles_labels()
    if ax.get_legend() is not None:
        title = title or ax.get_legend().get_title().get_text() or None
        ax.get_legend().remove()
    if handles:
        ax.figure.legend(handles, [wrap(t, width) for t in labels], title=title, loc="outside right upper",
                         fontsize="small", title_fontsize="small")


def lines(data: pd.DataFrame, x: str, y: str, ax: plt.Axes, per_run: bool = False, **kwargs: Any) -> None:
    """One line per group (``hue``, plus ``style`` for a second varied setting): the mean over seeds with a band of
    one standard deviation where a group has more than one seed; ``per_run`` draws every run's own line instead."""
    hue, style = _titles(data)
    frame = data.rename(columns={"hue": hue, "style": style})
    has_style = style in frame and frame[style].notna().any()
    spread = {"units": "run", "estimator": None} if per_run else {"errorbar": "sd" if replicated(data) else None}
    sns.lineplot(data=frame, x=x, y=y, hue=hue, style=style if has_style else None, ax=ax, **spread, **kwargs)


def replicated(data: pd.DataFrame) -> bool:
    """Whether some group has runs of more than one seed (only then is a spread band drawn)."""
    if "run" not in data or data.empty:
        return False
    keys = [c for c in ("hue", "style") if c in data]
    return bool(data.groupby(keys, dropna=False)["run"].nunique().gt(1).any())


def band_note(data: pd.DataFrame) -> str:
    """``mean over seeds, band = 1 sd`` or, with one seed per group, ``one seed per group``."""
    return "mean over seeds, band = 1 sd" if replicated(data) else "one seed per group"


def integer_rounds(ax: plt.Axes) -> None:
    """Round numbers on the x axis are integers."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _titles(data: pd.DataFrame) -> tuple[str, str]:
    return data.attrs.get("hue_title", "group"), data.attrs.get("style_title", "setting")


def wrap(text: str, width: int = 38) -> str:
    return "\n".join(textwrap.wrap(str(text), width)) or str(text)
