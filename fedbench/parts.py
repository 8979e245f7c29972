"""Build one config part: ``build_part(node)`` instantiates a group option after checking its keys and value types
against its factory's signature (:mod:`fedbench.schema`), and surfaces a part's own ConfigError unwrapped.

It lives low in the layers (it needs only Hydra and the schema) so that every part that builds a sub-part (the
threat model, the compression channel, the runners) imports it downward.
"""

from __future__ import annotations

from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig

from fedbench.errors import ConfigError
from fedbench.schema import check_node


def build_part(node: DictConfig, field: str | None = None, **kwargs: Any) -> Any:
    """``hydra.utils.instantiate`` after the node's keys and value types are checked against its factory's
    signature; surfaces a part's ConfigError unwrapped. ``field``: the node's name in errors, for a node detached from
    the config (else its own key)."""
    check_node(node, field)
    try:
        return instantiate(node, **kwargs)
    except InstantiationException as err:
        cause = err.__cause__
        if isinstance(cause, ConfigError):
            raise cause from None
        raise
