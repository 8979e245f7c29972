"""fedbench's in-process rounds vs a plain PyTorch loop doing identical work.

Both sides run the same model from the same initial weights on the same client tensors,
with the same sampled clients and the same minibatch order (the same seeded generators),
sequential clients and sample-weighted averaging, and evaluate every round. Because the
work is identical, the final accuracies must agree; the script checks that before it
reports the time ratio. Runs alternate (fedbench, plain, fedbench, ...) and the median is
reported, so drift on a shared machine hits both sides alike.

    uv run python benchmarks/bench_inprocess.py [--repeats 5] [--out reports/bench]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from hydra import compose, initialize_config_dir

from fedbench.build import build
from fedbench.run import run
from fedbench.sampling import sample_clients
from fedbench.seeding import derive_seed

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from plain_fedavg import fedavg_round  # noqa: E402  (the same textbook round as bench_clients.py's)
MNIST_ROOT = ROOT.parent / "shared" / "data"
SETUPS = {
    "digits_2nn_default": [],
    "mnist_2nn_mcmahan": ["dataset=mnist", f"dataset.root={MNIST_ROOT}", "num_clients=100", "client_fraction=0.1",
                          "local_epochs=1", "batch_size=10", "rounds=5", "partitioner=iid"],
}


def plain_loop(cfg) -> float:
    """The reference: textbook FedAvg in plain PyTorch (an in-place running weighted sum), no fedbench code on the
    hot path."""
    exp = build(cfg)  # same data, partition and initial model as fedbench (setup cost on both sides)
    model = exp.task.model
    params = list(model.parameters())
    x_global = torch.nn.utils.parameters_to_vector(params).detach().clone()
    acc = 0.0
    for r in range(1, cfg.rounds + 1):
        sampled = sample_clients(cfg.num_clients, cfg.client_fraction, cfg.seed, r)
        x_global = fedavg_round(model, x_global, exp.client_data, sampled, lr=cfg.lr, epochs=cfg.local_epochs,
                                batch_size=cfg.batch_size, seeds={c: derive_seed(cfg.seed, r, c, "batches") for c in sampled})
        torch.nn.utils.vector_to_parameters(x_global.clone(), params)
        with torch.no_grad():
            acc = (model(exp.data.x_test).argmax(1) == exp.data.y_test).float().mean().item()
    return acc


def measure(name: str, overrides: list[str], repeats: int, out_dir: Path) -> dict:
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        # resume=none: every repeat trains from scratch (the default checkpoint-per-round stays on and is timed)
        cfg = compose("config", overrides=[*overrides, "resume=none", f"output_dir={out_dir / 'runs' / name}"])
    times: dict[str, list[float]] = {"fedbench": [], "plain": []}
    accs: dict[str, float] = {}
    run(cfg), plain_loop(cfg)  # warm-up: first-call costs (lazy op init, imports) are not per-run overhead
    for _ in range(repeats):
        t0 = time.perf_counter()
        accs["fedbench"] = run(cfg).summary["final_accuracy"]
        times["fedbench"].append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        accs["plain"] = plain_loop(cfg)
        times["plain"].append(time.perf_counter() - t0)
    if abs(accs["fedbench"] - accs["plain"]) > 1e-3:
        raise RuntimeError(f"{name}: the two loops did different work (accuracy {accs})")
    med = {k: statistics.median(v) for k, v in times.items()}
    return {"setup": name, "overrides": overrides, "rounds": cfg.rounds, "repeats": repeats,
            "fedbench_s": med["fedbench"], "plain_s": med["plain"], "ratio": med["fedbench"] / med["plain"],
            "all_fedbench_s": times["fedbench"], "all_plain_s": times["plain"], "final_accuracy": accs}


def write_report(results: list[dict], out: Path) -> None:
    meta = {"machine": platform.processor() or platform.machine(), "threads": torch.get_num_threads(),
            "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "torch": torch.__version__, "python": platform.python_version()}
    (out / "inprocess_vs_plain.json").write_text(json.dumps({"meta": meta, "results": results}, indent=2) + "\n")
    lines = ["# fedbench in-process rounds vs a plain PyTorch loop", "",
             "Same model, initial weights, client data, sampled clients and minibatch order on both sides; "
             "sequential clients, sample-weighted averaging (the plain loop: an in-place running sum), evaluation "
             "every round. Whole runs timed the same way on both sides (one call each, from data set-up to the last "
             "round; fedbench's includes its CSV/JSON writing and per-round checkpoint); one warm-up each, then "
             "alternating runs. Ratio: median of each pair's fedbench / plain, with its range over pairs; a range "
             "that includes 1 is within the noise.",
             f"Machine: {meta['machine']}, {meta['cores']} usable cores, {meta['threads']} torch threads in this one "
             f"process, torch {meta['torch']}, Python {meta['python']}. Both loops share this process, so both run "
             "with the C allocator setting fedbench's first run applies (allocator=keep_freed: freed memory stays "
             "mapped for reuse, fedbench/allocator.py).", "",
             "| setup | rounds | repeats | fedbench median (min-max) s | plain loop median (min-max) s | "
             "fedbench / plain, median (min-max) | final accuracy |", "|---|---|---|---|---|---|---|"]
    for r in results:
        fb, pl = r["all_fedbench_s"], r["all_plain_s"]
        ratios = [a / b for a, b in zip(fb, pl)]
        noise = " within noise" if min(ratios) <= 1 <= max(ratios) else ""
        lines.append(f"| {r['setup']} | {r['rounds']} | {r['repeats']} | {r['fedbench_s']:.2f} ({min(fb):.2f}-{max(fb):.2f}) | "
                     f"{r['plain_s']:.2f} ({min(pl):.2f}-{max(pl):.2f}) | {statistics.median(ratios):.3f}x "
                     f"({min(ratios):.3f}-{max(ratios):.3f}){noise} | {r['final_accuracy']['fedbench']:.4f} |")
    lines += ["", "Regenerate: `uv run python benchmarks/bench_inprocess.py`", ""]
    (out / "inprocess_vs_plain.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    args = parser.parse_args()
    logging.getLogger("fedbench").setLevel(logging.WARNING)
    args.out.mkdir(parents=True, exist_ok=True)
    setups = {k: v for k, v in SETUPS.items() if "mnist" not in k or (MNIST_ROOT / "MNIST" / "raw").is_dir()}
    results = [measure(name, ov, args.repeats, ROOT / "outputs" / "bench") for name, ov in setups.items()]
    write_report(results, args.out)
    for r in results:
        print(f"{r['setup']}: fedbench {r['fedbench_s']:.2f}s, plain {r['plain_s']:.2f}s, ratio {r['ratio']:.3f}x")


if __name__ == "__main__":
    main()
