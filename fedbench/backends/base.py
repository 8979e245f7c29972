"""The backend record and its declared capabilities (see :mod:`fedbench.backends`)."""


from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def _same(flag: bool) -> bool:
    return flag


def _nothing() -> None:
    return None


@dataclass(frozen=True)
class BackendCapabilities:
    """What a backend declares it can do.

    Attributes:
        devices: the device types a round can run on (``cpu``, ``cuda``, ``mps``).
        vectorizes: it trains a chunk of clients at once (``train_many``) instead of one ``job`` per client.
        process_group: its ranks form a ``torch.distributed`` process group (pipeline stages need one).
        runner: it runs the whole experiment itself, in place of the paradigm's round loop (``cfg -> RunResult``).
        precheck: ``cfg -> None``, raising ConfigError for what the backend cannot run; ``run()`` calls it before it
            takes the run folder's lock, so a refused config leaves nothing on disk (a runner's own checks).
    """

    devices: tuple[str, ...] = ("cpu", "cuda")
    vectorizes: bool = False
    process_group: bool = False
    runner: Callable[[Any], Any] | None = None
    precheck: Callable[[Any], None] | None = None


def declares(capabilities: BackendCapabilities) -> Callable[[Callable[..., "Backend"]], Callable[..., "Backend"]]:
    """Attach ``capabilities`` to a backend factory, where :func:`declared` reads them without calling it."""

    def mark(factory: Callable[..., "Backend"]) -> Callable[..., "Backend"]:
        factory.capabilities = capabilities  # type: ignore[attr-defined]
        return factory

    return mark


def declared(node: Any) -> BackendCapabilities:
    """The capabilities the ``backend`` config's factory declares (defaults for a factory that declares none)."""
    from hydra.utils import get_object

    target = node.get("_target_") if hasattr(node, "get") else None
    factory = get_object(target) if isinstance(target, str) else None
    return getattr(factory, "capabilities", BackendCapabilities())


@dataclass(frozen=True)
class Backend:
    """``map(job, clients)`` runs ``job(client)`` for each client and returns results in client order
    on every rank; only rank 0 (``is_main``) evaluates and writes outputs.

    ``rank_times`` holds, after each ``map``, one dict per rank: ``compute_s`` (its clients' local
    work), ``wait_s`` (idle at the barrier, waiting for the slowest rank) and ``comm_s`` (the
    collective that exchanges the results). ``agree(flag)`` returns rank 0's ``flag`` on every rank.
    ``close()`` releases what the backend set up (a run calls it when it ends, so the next job of a
    Hydra multirun in the same process starts clean). A backend that trains many clients at once
    (``backend=vectorized``) sets ``train_many(exp, epochs, round, clients, start, states)``, which replaces
    ``map`` for local training, and ``check(exp)``, which ``build`` calls to refuse what it cannot run.
    """

    name: str
    map: Callable[[Callable[[int], R], Sequence[int]], list[R]]
    rank: int = 0
    world_size: int = 1
    agree: Callable[[bool], bool] = _same
    rank_times: list[dict[str, Any]] = field(default_factory=list)
    close: Callable[[], None] = _nothing
    train_many: Callable[..., list] | None = None
    check: Callable[[Any], None] | None = None
    capabilities: BackendCapabilities = BackendCapabilities()

    @property
    def is_main(self) -> bool:
        return self.rank == 0
