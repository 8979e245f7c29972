"""Sequential vs vectorised clients, CPU vs GPU: per-round time of the same FedAvg rounds; and a device check.

    python benchmarks/bench_gpu.py [--clients 100 1000] [--rounds 4] [--out reports/bench]

Workload: FedProx's Synthetic(1, 1) (generated, so nothing to download on a GPU machine), naturally federated
into N devices of unequal sizes, the 2NN, every client trains every round (E = 1, B = 10, lr 0.05). Contenders,
each a fedbench run in this process: ``backend=inprocess device=cpu`` (clients one after another on the CPU: the
reference), ``backend=vectorized device=cpu`` and, where a GPU exists, ``backend=inprocess device=cuda`` and
``backend=vectorized device=cuda``. Reported: the median round time after round 1 and the final accuracy (every
contender must agree with the reference to 1e-3; a GPU's float reductions differ slightly).

The device check then runs short configurations that touch every tensor path of a round (algorithms with client
and server state, compressors, robust aggregators, DP noise, attacks, gossip, buffers) on the GPU and on the CPU,
and records whether each ran and how far its accuracy is from the CPU's. Writes ``gpu.json`` and ``gpu.md`` (with
the GPU's name) to ``--out``. ``benchmarks/gpu.sh`` runs it on a GPU machine in under 8 minutes.
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


CHECKS = {  # every tensor path of a round: client/server state, compression, robust aggregation, noise, gossip, buffers
    "scaffold": ["algorithm=scaffold"],
    "fednova + qsgd": ["algorithm=fednova", "compressor=qsgd"],
    "fedadam + dp_fedavg + gaussian attack": ["algorithm=fedadam", "privacy=dp_fedavg", "attack=gaussian"],
    "feddyn + topk error feedback": ["algorithm=feddyn", "compressor=topk", "compressor.error_feedback=true"],
    "krum + powersgd + momentum": ["aggregator=krum", "client_fraction=1", "compressor=powersgd", "momentum=0.5"],
    "gossip (CHOCO) + randk": ["topology=gossip", "client_fraction=1", "compressor=randk"],
    "hierarchical + fedprox": ["topology=hierarchical", "algorithm=fedprox"],
    "async": ["topology=async", "topology.concurrency=4", "topology.buffer_size=2"],
    "BatchNorm model": ["model=mlp_bn", "batch_size=20"],
    "local DP-SGD": ["privacy=local_dp"],
    "fedsgd": ["algorithm=fedsgd"],
    "vectorized fedprox": ["backend=vectorized", "algorithm=fedprox"],
    "centralized baseline": ["paradigm=centralized"],
}


def device_check(tmp: Path, other: str = "cuda") -> dict:
    """Each check on ``other`` (the GPU) and the CPU (digits, 8 clients, 3 rounds): whether it ran and the gap."""
    base = ["num_clients=8", "client_fraction=0.5", "partitioner=quantity", "rounds=3", "local_epochs=1",
            "checkpoint_every=1", "resume=none"]
    out = {}
    for name, extra in CHECKS.items():
        print(f"device check: {name} ...", flush=True)
        row: dict = {}
        try:
            acc = {d: run(compose([*base, *extra, f"device={d}"], output_dir=str(tmp / f"check_{len(out)}_{d}")))
                   .summary["final_accuracy"] for d in ("cpu", other)}
            row = {"ok": True, "cpu_accuracy": acc["cpu"], "cuda_accuracy": acc[other],
                   "gap": abs(acc["cpu"] - acc[other])}
        except Exception as err:  # recorded, not raised: the table shows every failing path at once
            row = {"ok": False, "error": f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:300]}
        out[name] = row
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[100, 1000])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    args = parser.parse_args()
    logging.getLogger("fedbench").setLevel(logging.WARNING)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    contenders = {"inprocess (cpu)": ["backend=inprocess", "device=cpu"],
                  "vectorized (cpu)": ["backend=vectorized", "device=cpu"]}
    if gpu:
        contenders["inprocess (cuda)"] = ["backend=inprocess", "device=cuda"]
        contenders["vectorized (cuda)"] = ["backend=vectorized", "device=cuda"]
    results, checks = [], {}
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
        if gpu:
            checks = device_check(Path(tmp))
    meta = {"gpu": gpu, "cpu": platform.processor() or platform.machine(), "torch_threads": torch.get_num_threads(),
            "torch": torch.__version__, "python": platform.python_version(), "rounds": args.rounds}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu.json").write_text(json.dumps({"meta": meta, "results": results, "device_check": checks}, indent=2) + "\n")
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
    if checks:
        lines += ["", "## Device check: the same short runs on the GPU and the CPU", "",
                  "| configuration | ran on cuda | cpu acc | cuda acc | gap / error |", "|---|---|---|---|---|"]
        for name, c in checks.items():
            lines.append(f"| {name} | {'yes' if c['ok'] else 'NO'} | {c.get('cpu_accuracy', float('nan')):.4f} | "
                         f"{c.get('cuda_accuracy', float('nan')):.4f} | {c['gap'] if c['ok'] else c['error']} |")
    lines += ["", "Regenerate on a GPU machine: `bash benchmarks/gpu.sh`", ""]
    (args.out / "gpu.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
