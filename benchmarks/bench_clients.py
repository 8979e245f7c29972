"""Many small clients: fedbench (in-process and vectorised) vs a plain PyTorch loop vs Flower's simulation.

    uv run python benchmarks/bench_clients.py [--workloads A B C] [--rounds 5] [--repeats 3] [--no-flower]

Workloads on real MNIST with McMahan's 2NN (E = 1, B = 10, lr 0.1, IID):
  A = 100 clients, 10 per round, 600 samples each;  B = 1000 clients, 50 per round, 60 each;
  C = 1000 clients, 100 per round, 60 each.
For each workload the script builds fedbench's data, split and initial model once and writes them as a handoff
(numpy + a torch.fx trace + the sampled clients and every (round, client)'s minibatch seed), so that every
contender does the same work: the plain loop (``plain_fedavg.py``, torch only), fedbench ``backend=inprocess``
and ``backend=vectorized`` (``python -m fedbench`` with the same seed, so the same split, clients and batches),
and Flower 1.x's Ray simulation (``flower_env/flower_fedavg.py``) in an isolated environment this script
builds with uv (Flower never enters fedbench's lock). Every contender is a fresh process pinned to one core
(``taskset``) with one torch thread, started in turn (interleaved repeats), and measured from outside: total
wall time from launch, start-up (launch to the end of round 1, less one median round), the median round time after round 1, peak
memory (resident memory summed over the process tree, sampled every 50 ms) and final accuracy (which must agree
between the plain loop and fedbench). Medians over repeats go to ``reports/bench/clients.{json,md}``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
MNIST_ROOT = ROOT.parent / "shared" / "data"
WORK = ROOT / "outputs" / "bench" / "clients"
FLOWER_PROJECT = ROOT / "benchmarks" / "flower_env"
WORKLOADS = {
    "A": {"num_clients": 100, "client_fraction": 0.1},
    "B": {"num_clients": 1000, "client_fraction": 0.05},
    "C": {"num_clients": 1000, "client_fraction": 0.1},
}
COMMON = ["dataset=mnist", "model=mlp", "partitioner=iid", "local_epochs=1", "batch_size=10", "lr=0.1", "seed=0",
          "eval_every=1"]


def overrides(workload: str, rounds: int) -> list[str]:
    w = WORKLOADS[workload]
    return [*COMMON, f"dataset.root={MNIST_ROOT}", f"num_clients={w['num_clients']}",
            f"client_fraction={w['client_fraction']}", f"rounds={rounds}"]


def write_handoff(workload: str, rounds: int, folder: Path) -> None:
    """fedbench's data, split, initial model, sampled clients and batch seeds, readable without fedbench."""
    from fedbench.backends.fedml import handoff
    from fedbench.build import build_part, build_task
    from fedbench.config import compose
    from fedbench.seeding import derive_seed

    cfg = compose(["backend=fedml", *overrides(workload, rounds)], output_dir=str(folder / "unused"))
    data = build_part(cfg.dataset)
    parts = build_part(cfg.partitioner)(data.train_labels, cfg.num_clients, cfg.seed, data.groups)
    handoff.write(folder, cfg, data, parts, build_task(cfg, data).model, threads=1)
    plan = json.loads((folder / handoff.PLAN).read_text())
    plan.update(lr=cfg.lr, epochs=cfg.local_epochs,
                batch_seeds={str(r): {str(c): derive_seed(cfg.seed, r, c, "batches") for c in clients}
                             for r, clients in enumerate(plan["sampled"], start=1)})
    (folder / handoff.PLAN).write_text(json.dumps(plan) + "\n")


def flower_python() -> Path:
    """Flower's environment (built on first use with uv from ``flower_env/uv.lock``)."""
    env = ROOT / "outputs" / "bench" / "flower-env"
    if not (env / "bin" / "python").exists():
        print(f"building Flower's environment in {env} (first use) ...", flush=True)
        uv = os.environ.get("UV") or shutil.which("uv") or "uv"
        subprocess.run([uv, "sync", "--frozen", "--project", str(FLOWER_PROJECT)], check=True,
                       env={**os.environ, "UV_PROJECT_ENVIRONMENT": str(env)})
    return env / "bin" / "python"


def watch(cmd: list[str], first_round_seen, env: dict[str, str] | None = None) -> dict:
    """Run ``cmd`` on one core; return wall time, peak tree RSS, and when ``first_round_seen()`` first held."""
    launched = time.time()
    proc = subprocess.Popen(["taskset", "-c", "0", *cmd], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, **(env or {})}, start_new_session=True)
    root, peak, first = psutil.Process(proc.pid), 0, None
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        if first is None and first_round_seen():
            first = time.time()
        time.sleep(0.05)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{err[-3000:]}")
    return {"launched": launched, "wall_s": time.time() - launched, "peak_mb": peak / 2**20, "first_seen": first}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def run_script(name: str, python: str, script: Path, folder: Path) -> dict:
    out = folder / f"{name}.jsonl"
    out.unlink(missing_ok=True)
    m = watch([python, str(script), str(folder), str(out), "1"], lambda: False)
    lines = _jsonl(out)
    rounds = [e for e in lines if e["event"] == "round"]
    ends = [e["end"] for e in rounds]
    starts = [e.get("start", prev) for e, prev in zip(rounds, [lines[0]["t"], *ends])]
    return {**m, "first_end": ends[0], "round_s": [b - a for a, b in zip(starts, ends)],
            "final_accuracy": rounds[-1]["acc"]}


def run_fedbench(backend: str, workload: str, rounds: int, folder: Path) -> dict:
    run_dir = folder / f"fedbench_{backend}"
    shutil.rmtree(run_dir, ignore_errors=True)
    metrics = run_dir / "metrics.csv"
    cmd = [sys.executable, "-m", "fedbench", *overrides(workload, rounds), f"backend={backend}", "resume=none",
           f"hydra.run.dir={run_dir}"]
    m = watch(cmd, lambda: metrics.exists() and len(metrics.read_text().splitlines()) > 1)
    with metrics.open() as f:
        rows = list(csv.DictReader(f))
    round_s = [float(r["wall_s"]) for r in rows]
    return {**m, "first_end": m["first_seen"], "round_s": round_s, "final_accuracy": float(rows[-1]["test_accuracy"])}


def summarize(samples: list[dict]) -> dict:
    """Medians over repeats. Start-up = launch to the end of round 1, less a typical round (the same rule for
    every contender: Flower starts Ray inside its first round, fedbench imports before it)."""
    per_round = [statistics.median(s["round_s"][1:] or s["round_s"]) for s in samples]
    startup = [s["first_end"] - s["launched"] - r for s, r in zip(samples, per_round)]
    return {"wall_s": statistics.median(s["wall_s"] for s in samples), "startup_s": statistics.median(startup),
            "round_s": statistics.median(per_round), "round_s_all": per_round,
            "peak_mb": statistics.median(s["peak_mb"] for s in samples),
            "final_accuracy": samples[-1]["final_accuracy"], "repeats": len(samples)}


def measure(workload: str, rounds: int, repeats: int, flower: bool) -> dict:
    folder = WORK / workload
    folder.mkdir(parents=True, exist_ok=True)
    write_handoff(workload, rounds, folder)
    contenders = {
        "plain": lambda: run_script("plain", sys.executable, ROOT / "benchmarks" / "plain_fedavg.py", folder),
        "fedbench": lambda: run_fedbench("inprocess", workload, rounds, folder),
        "fedbench_vectorized": lambda: run_fedbench("vectorized", workload, rounds, folder),
    }
    if flower:
        python = str(flower_python())
        contenders["flower"] = lambda: run_script("flower", python, FLOWER_PROJECT / "flower_fedavg.py", folder)
    samples: dict[str, list[dict]] = {k: [] for k in contenders}
    for i in range(repeats):
        for name, go in contenders.items():
            print(f"workload {workload}, repeat {i + 1}/{repeats}: {name} ...", flush=True)
            samples[name].append(go())
    result = {name: summarize(s) for name, s in samples.items()}
    plain = result["plain"]["final_accuracy"]
    for name in ("fedbench", "fedbench_vectorized"):
        if abs(result[name]["final_accuracy"] - plain) > 1e-3:
            raise RuntimeError(f"workload {workload}: {name} and the plain loop did different work "
                               f"({result[name]['final_accuracy']} vs {plain})")
    return {"workload": workload, **WORKLOADS[workload], "rounds": rounds, "results": result}


def write_report(results: list[dict], out: Path, command: str) -> None:
    import torch

    meta = {"cpu": platform.processor() or platform.machine(), "cores_used": 1, "torch_threads": 1,
            "torch": torch.__version__, "python": platform.python_version(), "host_cpus": os.cpu_count()}
    try:
        meta["flower"] = subprocess.run([str(ROOT / "outputs" / "bench" / "flower-env" / "bin" / "python"), "-c",
                                         "import flwr; print(flwr.__version__)"], capture_output=True, text=True,
                                        check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    (out / "clients.json").write_text(json.dumps({"meta": meta, "command": command, "results": results}, indent=2) + "\n")
    lines = ["# Many small clients: fedbench vs a plain PyTorch loop vs Flower", "",
             "Real MNIST, McMahan's 2NN, E = 1, B = 10, lr 0.1, IID; the same split, initial model, sampled clients "
             "and minibatches for every contender (see `benchmarks/bench_clients.py`). Each run is a fresh process "
             "on one core (`taskset -c 0`, 1 torch thread); medians over interleaved repeats. round s: median "
             "round time after round 1 (training, aggregation, test-set evaluation); start-up: launch to the end "
             "of round 1 less one median round (imports, data, Ray); memory: peak resident memory summed over the process tree.",
             f"Machine: {meta['cpu']}, {meta['host_cpus']} cores (1 used), torch {meta['torch']}, Python "
             f"{meta['python']}" + (f", Flower {meta['flower']}" if "flower" in meta else "") + ".", "",
             "| workload | contender | round s | vs plain loop | start-up s | total s | peak MB | final acc |",
             "|---|---|---|---|---|---|---|---|"]
    for w in results:
        plain = w["results"]["plain"]["round_s"]
        for name, r in w["results"].items():
            lines.append(f"| {w['workload']} ({w['num_clients']} clients, {w['client_fraction']:g} per round) | {name} | "
                         f"{r['round_s']:.3f} | {r['round_s'] / plain:.2f}x | {r['startup_s']:.1f} | {r['wall_s']:.1f} | "
                         f"{r['peak_mb']:.0f} | {r['final_accuracy']:.4f} |")
    lines += ["", f"Regenerate: `{command}`", ""]
    (out / "clients.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-flower", action="store_true", help="skip Flower (no environment built)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    args = parser.parse_args()
    if not (MNIST_ROOT / "MNIST" / "raw").is_dir():
        sys.exit(f"real MNIST is expected in {MNIST_ROOT}/MNIST/raw (torchvision's layout)")
    if not shutil.which("taskset"):
        sys.exit("taskset (util-linux) is needed to pin every contender to one core")
    results = [measure(w, args.rounds, args.repeats, not args.no_flower) for w in args.workloads]
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(results, args.out, "uv run python benchmarks/bench_clients.py " + " ".join(sys.argv[1:]))
    print((args.out / "clients.md").read_text())


if __name__ == "__main__":
    main()
