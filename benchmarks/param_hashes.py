"""Print a hash of the final model of every algorithm on every topology (and a few cross-cutting combinations), so a
refactor can show it changed no number: run it before and after, and diff the outputs.

    uv run python benchmarks/param_hashes.py > before.txt   # on the parent commit
    uv run python benchmarks/param_hashes.py > after.txt    # on the change
    diff before.txt after.txt                               # no output: every number is the same

Each line: ``<algorithm> <topology> <extra> <sha256 of the final parameters (16 hex)> <final accuracy>``, or
``refused`` for a combination fedbench refuses before any work (the message may be reworded; a refusal that goes must
be explained by a declared capability).
Small runs on scikit-learn digits (8 clients, 2 rounds, E = 1), about two minutes on two cores.
"""

from __future__ import annotations

import hashlib
import logging
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fedbench.config import compose  # noqa: E402
from fedbench.errors import ConfigError  # noqa: E402
from fedbench.run import run  # noqa: E402

ALGORITHMS = sorted(p.stem for p in (ROOT / "conf" / "algorithm").glob("*.yaml"))
TOPOLOGIES = {"star": [], "hierarchical": ["topology.num_edges=2"], "gossip": ["client_fraction=1"],
              "async": ["topology.concurrency=4", "topology.buffer_size=2", "client_speed.sigma=1"]}
COMMON = ["num_clients=8", "client_fraction=0.5", "rounds=2", "local_epochs=1", "partitioner=quantity", "seed=3",
          "checkpoint_every=0"]
EXTRAS = {  # cross-cutting parts on the star (and one on gossip)
    "topk_ef": ["compressor=topk", "compressor.error_feedback=true"],
    "qsgd_both": ["compressor=qsgd", "compressor.direction=both"],
    "dp_fedavg": ["privacy=dp_fedavg"],
    "dp_fedavg_fixed": ["privacy=dp_fedavg", "client_sampling=fixed"],
    "local_dp": ["privacy=local_dp"],
    "krum_attack": ["aggregator=krum", "client_fraction=1", "attack=sign_flip"],
    "dropout": ["dropout=0.3"],
    "fedbn": ["model=mlp_bn", "batch_size=8", "task.local_buffers=true"],
    "buffers": ["model=mlp_bn", "batch_size=8"],
    "vectorized": ["backend=vectorized"],
    "poisson": ["client_sampling=poisson"],
}


def line(name: str, topology: str, extra: str, overrides: list[str], folder: Path) -> str:
    try:
        result = run(compose([*COMMON, f"algorithm={name}", f"topology={topology}", *overrides], folder))
    except ConfigError:
        return f"{name} {topology} {extra} refused"
    params = result.server["params"].detach().cpu().contiguous()
    digest = hashlib.sha256(params.numpy().tobytes()).hexdigest()[:16]
    return f"{name} {topology} {extra} {digest} {result.summary['final_accuracy']:.6f}"


def main() -> None:
    logging.getLogger("fedbench").setLevel(logging.ERROR)
    with tempfile.TemporaryDirectory() as tmp:
        n = 0
        for name in ALGORITHMS:
            for topology, overrides in TOPOLOGIES.items():
                n += 1
                print(line(name, topology, "-", overrides, Path(tmp) / f"r{n}"), flush=True)
        for extra, overrides in EXTRAS.items():
            for name in ("fedavg", "fedadam", "scaffold"):
                n += 1
                print(line(name, "star", extra, overrides, Path(tmp) / f"r{n}"), flush=True)
        n += 1
        print(line("fedavg", "gossip", "choco_topk", ["client_fraction=1", "compressor=topk"], Path(tmp) / f"r{n}"))


if __name__ == "__main__":
    main()
