"""Secrets never leave in clear: a database URL's password (``postgresql://user:secret@host/db``) and API keys are
masked in every message fedbench prints, every log line and every file it writes (``.hydra/config.yaml``,
``summary.json``, an HPO study's ``study.yaml``, the W&B config)."""

from __future__ import annotations

import logging
import re
from typing import Any

# scheme://user:password@  ->  scheme://user:***@
_URL_PASSWORD = re.compile(r"(?P<head>[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]+:)(?P<secret>[^@\s'\"]+)(?=@)")
# key=value / key: value pairs whose key names a secret
_KEYED = re.compile(r"(?i)(?P<head>\b[\w.\-]*(?:api[_-]?key|token|password|passwd|secret)[\w.\-]*['\"]?\s*[:=]\s*['\"]?)"
                    r"(?P<secret>[^\s'\",}]+)")
MASK = "***"


def mask(text: str) -> str:
    """``text`` with URL passwords and keyed secrets replaced by ``***``."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    return _KEYED.sub(lambda m: m["head"] + MASK, text)


def mask_tree(node: Any) -> Any:
    """A config tree (dicts, lists, strings) with every string masked, and the values of keys that name a secret."""
    if isinstance(node, dict):
        return {k: MASK if isinstance(k, str) and _secret_key(k) and isinstance(v, str) else mask_tree(v)
                for k, v in node.items()}
    if isinstance(node, (list, tuple)):
        return type(node)(mask_tree(v) for v in node)
    return mask(node) if isinstance(node, str) else node


def _secret_key(key: str) -> bool:
    return bool(re.search(r"(?i)api[_-]?key|token|password|passwd|secret", key))


class MaskingFilter(logging.Filter):
    """A logging filter that masks secrets in every record it passes (installed on the root handlers by the CLI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True
