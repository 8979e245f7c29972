"""Backends: how a round's client jobs are executed, and what each backend can do.

A backend's factory declares its :class:`BackendCapabilities` (``@declares(...)``): the device types it runs on,
whether it trains many clients at once, whether its ranks form a process group, and whether it runs the whole
experiment itself (a ``runner``). ``run()`` and the checks read them from the config (:func:`declared`) before the
backend is built, since building one may start a process group.
"""
from fedbench.backends.base import (Backend, BackendCapabilities, declared,  # noqa: E402,F401 - the public record
                                    declares)
