"""OmegaConf resolvers the study presets use (registered when fedbench is imported)."""

from __future__ import annotations

from omegaconf import OmegaConf


def register() -> None:
    """``${mul:a,b}``: a * b (e.g. weak scaling's clients per round = per-worker clients x workers)."""
    OmegaConf.register_new_resolver("mul", lambda a, b: a * b, replace=True)
