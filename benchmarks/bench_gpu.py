"""Sequential vs vectorised clients, CPU vs GPU: per-round time of the same FedAvg rounds.

    python benchmarks/bench_gpu.py [--clients 100 1000] [--rounds 4] [--out reports/bench]

Workload: FedProx's Synthetic(1, 1) (generated, so nothing to download on a GPU machine), naturally federated
into N devices of unequal sizes, the 2NN, every client trains every round (E = 1, B = 10, lr 0.05). Contenders,
each a fedbench run in this process: ``backend=inprocess`` (clients one after another on the CPU),
``backend=vectorized backend.device=cpu`` and, where a GPU exists, ``backend=vectorized backend.device=cuda``.
Reported: the median round time after round 1 and the final accuracy (vectorised runs must agree with the
sequential one to 1e-3; a GPU's float reductions differ slightly). Writes ``gpu.json`` and ``gpu.md`` (with the
GPU's name) to ``--out``. ``benchmarks/gpu.sh`` runs it on a GPU machine in under 8 minutes.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fedbench.config import compose  # noqa: E402
from fedbench.run import run  # noqa: E402


def workload(n: int, rounds: int) -> list[str]:
    return ["dataset=synthetic", f"dataset.num_devices={n}", "partitioner=natural", f"num_clients={n}",
            "client_fraction=1", "model=mlp", "local_epochs=1", "batch_size=10", "lr=0.05", f"rounds={rounds}",
            "checkpoint_every=0", "resume=none", "target_accuracy=null"]


def measure(args: list[str], out: Path) -> dict:
    t0 = time.perf_counter()
    result = run(compose(args, output_dir=str(out)))
    rounds = [r["wall_s"] for r in result.rows]
    return {"round_s": statistics.median(rounds[1:] or rounds), "rounds_s": rounds,
            "total_s": time.perf_counter() - t0, "final_accuracy": result.summary["final_accuracy"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    args = parser.parse_args()
    logging.getLogger("fedbench").setLevel(logging.WARNING)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    contenders = {"inprocess (cpu)": ["backend=inprocess"],
                  "vectorized (cpu)": ["backend=vectorized", "backend.device=cpu"]}
    if gpu:
        contenders["vectorized (cuda)"] = ["backend=vectorized", "backend.device=cuda"]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.clients:
            row = {"clients": n, "results": {}}
            for name, extra in contenders.items():
                print(f"{n} clients: {name} ...", flush=True)
                row["results"][name] = measure([*workload(n, args.rounds), *extra], Path(tmp) / f"{n}_{len(row['results'])}")
            ref = row["results"]["inprocess (cpu)"]
            for name, r in row["results"].items():
                r["speedup"] = ref["round_s"] / r["round_s"]
                if abs(r["final_accuracy"] - ref["final_accuracy"]) > 1e-3:
                    raise RuntimeError(f"{n} clients: {name} reached {r['final_accuracy']}, the sequential run "
                                       f"{ref['final_accuracy']}: not the same work")
            results.append(row)
    meta = {"gpu": gpu, "cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "rounds": args.rounds}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = ["# Sequential vs vectorised clients, CPU vs GPU", "",
             "Synthetic(1, 1), N devices of unequal sizes, the 2NN, every client every round (E = 1, B = 10); median "
             "round time after round 1. Speed-up is against `backend=inprocess` on the CPU.",
             f"GPU: {gpu or 'none (CPU contenders only)'}; CPU: {meta['cpu']}, {meta['torch_threads']} torch threads; "
             f"torch {meta['torch']}, Python {meta['python']}.", "",
             "| clients | contender | round s | speed-up | final acc |", "|---|---|---|---|---|"]
    for row in results:
        for name, r in row["results"].items():
            lines.append(f"| {row['clients']} | {name} | {r['round_s']:.3f} | {r['speedup']:.1f}x | "
                         f"{r['final_accuracy']:.4f} |")
    lines += ["", "Regenerate on a GPU machine: `bash benchmarks/gpu.sh`", ""]
    (args.out / "gpu.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
