"""OmegaConf resolvers the study presets use (registered when fedbench is imported)."""

from __future__ import annotations

from omegaconf import OmegaConf


def register() -> None:
    """``${mul:a,b}``: a * b (e.g. weak scaling's clients per round = per-worker clients x workers);
    ``${div:a,b}``: a / b (e.g. a paper's clients per round as ``client_fraction`` = per round / num_clients)."""
    OmegaConf.register_new_resolver("mul", lambda a, b: a * b, replace=True)
    OmegaConf.register_new_resolver("div", lambda a, b: a / b, replace=True)
