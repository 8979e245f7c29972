"""Many small clients: fedbench (in-process and vectorised) vs a plain PyTorch loop vs Flower's simulation.

    uv run python benchmarks/bench_clients.py [--workloads A B C] [--rounds 5] [--repeats 3] [--no-flower]
                                              [--flower-pinned]

Workloads on real MNIST with McMahan's 2NN (E = 1, B = 10, lr 0.1, IID):
  A = 100 clients, 10 per round, 600 samples each;  B = 1000 clients, 50 per round, 60 each;
  C = 1000 clients, 100 per round, 60 each.
For each workload the script builds fedbench's data, split and initial model once and writes them as a handoff
(numpy + a torch.fx trace + the sampled clients and every (round, client)'s minibatch seed), so that every
contender does the same work: the plain loop (``plain_fedavg.py``, torch only, an in-place running weighted sum),
fedbench ``backend=inprocess`` and ``backend=vectorized`` (``python -m fedbench`` with the same seed, so the same
split, clients and batches, with its default per-round work: CSV row, console line, checkpoint every round), and
Flower's current simulation API (``flower_env/flower_fedavg.py``: ``run_simulation`` with a message-based ServerApp
and ClientApp) in an isolated environment this script builds with uv (Flower never enters fedbench's lock).

Fair timing: every contender is a fresh process on the same machine, started in turn (interleaved repeats), and
writes the same events at the same point of its own loop (``round_start`` before a round samples its clients,
``end`` after its last round; fedbench through ``round_clock.py``). A round's time is the gap between consecutive
round starts (the last: to ``end``), so it includes all of the contender's per-round work. The plain loop and
fedbench train their clients one after another with 1 torch thread; Flower gets the machine's cores as a user would
give them (Ray, one client actor per CPU, 1 torch thread each); ``--flower-pinned`` adds a labelled variant on one
core. Reported per contender: median round time over rounds 2.. (the first round separately), start-up (launch to
the start of round 1), total wall time, peak memory (proportional set size summed over the process tree, sampled
every 50 ms), final accuracy (which must agree between the plain loop and fedbench), and for each ratio to the plain loop
its median and range over the repeats (a ratio whose range includes 1 is within the noise, not a win).
Results go to ``reports/bench/clients.{json,md}``.
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
    from fedbench.build import build_task
    from fedbench.parts import build_part
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


def watch(cmd: list[str], env: dict[str, str] | None = None, pin: bool = False) -> dict:
    """Run ``cmd`` (on core 0 only with ``pin``); return its launch time, wall time and the peak of the process
    tree's proportional set size (PSS)."""
    launched = time.time()
    proc = subprocess.Popen([*(["taskset", "-c", "0"] if pin else []), *cmd], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, env={**os.environ, **(env or {})}, start_new_session=True)
    root, peak = psutil.Process(proc.pid), 0
    while proc.poll() is None:
        try:
            tree = [root, *root.children(recursive=True)]
            # PSS: a page shared by several processes counts once in all (a fork for `git` would otherwise count
            # its parent's memory twice while it lives)
            peak = max(peak, sum(p.memory_full_info().pss for p in tree if p.is_running()))
        except psutil.Error:
            pass
        time.sleep(0.05)
    err = proc.stderr.read().decode(errors="replace")
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({proc.returncode}):\n{err[-3000:]}")
    return {"launched": launched, "wall_s": time.time() - launched, "peak_mb": peak / 2**20}


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


def timing(events: list[dict], launched: float) -> dict:
    """Round times from a contender's events: gaps between consecutive ``round_start`` events, the last round to
    ``end``; start-up = launch to the first round's start."""
    starts = [e["t"] for e in events if e["event"] == "round_start"]
    end = next(e["t"] for e in events if e["event"] == "end")
    gaps = [b - a for a, b in zip(starts, [*starts[1:], end])]
    return {"startup_s": starts[0] - launched, "first_round_s": gaps[0], "round_s": gaps}


def run_script(name: str, python: str, script: Path, folder: Path, args: list[str], pin: bool = False) -> dict:
    out = folder / f"{name}.jsonl"
    out.unlink(missing_ok=True)
    m = watch([python, str(script), str(folder), str(out), *args], pin=pin)
    events = _jsonl(out)
    accs = [e["acc"] for e in events if e["event"] == "round"]
    return {**m, **timing(events, m["launched"]), "final_accuracy": accs[-1]}


def run_fedbench(backend: str, workload: str, rounds: int, folder: Path, extra: tuple[str, ...] = (),
                 name: str | None = None) -> dict:
    run_dir = folder / f"fedbench_{name or backend}"
    shutil.rmtree(run_dir, ignore_errors=True)
    clock = folder / f"fedbench_{name or backend}.jsonl"
    clock.unlink(missing_ok=True)
    cmd = [sys.executable, "-m", "fedbench", *overrides(workload, rounds), f"backend={backend}", "backend.threads=1",
           *extra, "resume=none", f"hydra.run.dir={run_dir}", "+callbacks.clock._target_=round_clock.round_clock",
           "+callbacks.clock._partial_=true", f"+callbacks.clock.path={clock}"]
    pythonpath = os.pathsep.join(filter(None, [str(ROOT / "benchmarks"), os.environ.get("PYTHONPATH")]))
    m = watch(cmd, env={"PYTHONPATH": pythonpath})
    with (run_dir / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    phases = json.loads((run_dir / "summary.json").read_text()).get("startup") or {}
    return {**m, **timing(_jsonl(clock), m["launched"]), "final_accuracy": float(rows[-1]["test_accuracy"]),
            "phases": phases, "params": str(run_dir / "checkpoint" / "checkpoint.pt")}


def param_gap(a: str, b: str) -> float:
    """max |w_a - w_b| over the final server models of two fedbench runs (their last checkpoints)."""
    import torch

    wa, wb = (torch.load(path, map_location="cpu", weights_only=True)["server"]["params"] for path in (a, b))
    return float((wa - wb).abs().max())


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarize(samples: list[dict], plain: list[dict]) -> dict:
    """Per contender over the interleaved repeats: the median of each repeat's median round time (rounds 2..), its
    range, and the ratio to the plain loop's round time in the same repeat (median and range)."""
    per_round = [statistics.median(s["round_s"][1:] or s["round_s"]) for s in samples]
    plain_round = [statistics.median(p["round_s"][1:] or p["round_s"]) for p in plain]
    return {"round_s": _spread(per_round), "ratio_to_plain": _spread([a / b for a, b in zip(per_round, plain_round)]),
            "first_round_s": _spread([s["first_round_s"] for s in samples]),
            "startup_s": _spread([s["startup_s"] for s in samples]),
            # launch to round 1's end less one ordinary round: start-up plus what a contender imports lazily in its
            # first round (torch imports torch._dynamo on a process's first optimizer step)
            "startup_with_lazy_s": _spread([s["startup_s"] + s["first_round_s"] - statistics.median(s["round_s"][1:] or
                                                                                                   s["round_s"])
                                            for s in samples]),
            "wall_s": _spread([s["wall_s"] for s in samples]), "peak_mb": _spread([s["peak_mb"] for s in samples]),
            "final_accuracy": samples[-1]["final_accuracy"], "repeats": len(samples),
            **({"phases": {k: _spread([s["phases"][k] for s in samples]) for k in PHASES}}
               if all(s.get("phases") for s in samples) else {})}


PHASES = ("imports_s", "data_s", "build_s")


def measure(workload: str, rounds: int, repeats: int, flower: bool, pinned: bool) -> dict:
    folder = WORK / workload
    folder.mkdir(parents=True, exist_ok=True)
    write_handoff(workload, rounds, folder)
    plain = str(ROOT / "benchmarks" / "plain_fedavg.py")
    contenders = {
        "plain": lambda: run_script("plain", sys.executable, Path(plain), folder, ["1"]),
        "fedbench": lambda: run_fedbench("inprocess", workload, rounds, folder),
        "fedbench_vectorized": lambda: run_fedbench("vectorized", workload, rounds, folder),
        "fedbench_vectorized_fused": lambda: run_fedbench("vectorized", workload, rounds, folder,
                                                          ("backend.fused_sgd=true",), "vectorized_fused"),
    }
    if flower:
        python, script = str(flower_python()), FLOWER_PROJECT / "flower_fedavg.py"
        cores = str(os.cpu_count() or 1)
        contenders["flower"] = lambda: run_script("flower", python, script, folder, ["1", cores])
        if pinned:
            contenders["flower_1core"] = lambda: run_script("flower_1core", python, script, folder, ["1", "1"], pin=True)
    samples: dict[str, list[dict]] = {k: [] for k in contenders}
    for i in range(repeats):
        for name, go in contenders.items():
            print(f"workload {workload}, repeat {i + 1}/{repeats}: {name} ...", flush=True)
            samples[name].append(go())
    result = {name: summarize(s, samples["plain"]) for name, s in samples.items()}
    # the vectorised clients against the sequential loop (last repeat's models): equal by default, up to float
    # rounding with the fused update
    seq = samples["fedbench"][-1]
    agreement = {name: {"accuracy_gap": abs(samples[name][-1]["final_accuracy"] - seq["final_accuracy"]),
                        "param_gap": param_gap(samples[name][-1]["params"], seq["params"])}
                 for name in ("fedbench_vectorized", "fedbench_vectorized_fused")}
    plain_acc = result["plain"]["final_accuracy"]
    for name in ("fedbench", "fedbench_vectorized", "fedbench_vectorized_fused"):
        if abs(result[name]["final_accuracy"] - plain_acc) > 1e-3:
            raise RuntimeError(f"workload {workload}: {name} and the plain loop did different work "
                               f"({result[name]['final_accuracy']} vs {plain_acc})")
    return {"workload": workload, **WORKLOADS[workload], "rounds": rounds, "results": result,
            "vectorized_vs_sequential": agreement}


CONTENDERS = {
    "plain": "1 process, 1 torch thread, clients in turn, glibc's malloc defaults",
    "fedbench": "1 process, 1 torch thread, clients in turn (backend=inprocess; allocator=keep_freed, fedbench's "
                "default: freed memory stays mapped for the next round, fedbench/allocator.py)",
    "fedbench_vectorized": "1 process, 1 torch thread, clients batched in chunks (backend=vectorized: the "
                           "hand-derived batched pass of fedbench/backends/batched_mlp.py, chunks of 10; "
                           "allocator=keep_freed)",
    "fedbench_vectorized_fused": "as fedbench_vectorized, with backend.fused_sgd=true (plain SGD's update folded "
                                 "into the gradient's matrix product: rounded differently from the sequential loop)",
    "flower": "Ray on all {cores} cores: 1 client actor per core, 1 torch thread each",
    "flower_1core": "Ray pinned to 1 core (taskset -c 0), 1 client actor",
}


def _range(d: dict, digits: int = 3, unit: str = "") -> str:
    return f"{d['median']:.{digits}f}{unit} ({d['min']:.{digits}f}-{d['max']:.{digits}f})"


def _ratio(d: dict) -> str:
    noise = d["min"] <= 1.0 <= d["max"]
    return f"{_range(d, 2, 'x')}" + (" within noise" if noise else "")


def write_report(results: list[dict], out: Path, command: str, repeats: int) -> None:
    import torch

    meta = {"cpu": platform.processor() or platform.machine(), "host_cpus": os.cpu_count(), "torch_threads": 1,
            "torch": torch.__version__, "python": platform.python_version(), "repeats": repeats}
    try:
        meta["flower"] = subprocess.run([str(ROOT / "outputs" / "bench" / "flower-env" / "bin" / "python"), "-c",
                                         "import flwr; print(flwr.__version__)"], capture_output=True, text=True,
                                        check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    (out / "clients.json").write_text(json.dumps({"meta": meta, "command": command, "results": results}, indent=2) + "\n")
    rounds = results[0]["rounds"]
    lines = ["# Many small clients: fedbench vs a plain PyTorch loop vs Flower", "",
             "Real MNIST, McMahan's 2NN, E = 1, B = 10, lr 0.1, IID; the same split, initial model, sampled clients "
             "and minibatches for every contender (see `benchmarks/bench_clients.py`).", "",
             f"**How it was timed.** Machine: {meta['cpu']}, {meta['host_cpus']} cores, torch {meta['torch']}, Python "
             f"{meta['python']}" + (f", Flower {meta['flower']}" if "flower" in meta else "") + f". {rounds} rounds "
             f"per run, {repeats} interleaved repeats (a fresh process per contender and repeat). Every contender writes "
             "an event when a round starts (before it samples its clients) and when its last round ends; a round's "
             "time is the gap to the next start, so it includes all of that contender's per-round work: training, "
             "aggregation and test-set evaluation for all; for fedbench also its CSV row, console line and per-round "
             "checkpoint; for Flower its message passing and Ray scheduling. round s: median over rounds 2.. of each "
             "repeat, then the median (min-max) over repeats; x plain: the same repeat's ratio to the plain loop, "
             "median (min-max); *within noise* when that range includes 1. first round s: round 1 (lazy "
             "initialisation, Flower's actor start). start-up s: launch to the start of round 1 (imports, data, Ray), "
             "the time to the first client. + lazy s: launch to the end of round 1 less one ordinary round (start-up "
             "plus what is imported lazily in round 1: torch imports torch._dynamo on a process's first optimizer "
             "step, which fedbench has already paid through Lightning's imports). "
             "peak MB: proportional set size (resident memory, shared pages split among their processes) summed over "
             "the process tree, sampled every 50 ms.", "",
             "Contenders: " + "; ".join(f"**{k}**: {v.format(cores=meta['host_cpus'])}" for k, v in CONTENDERS.items()
                                        if any(k in w["results"] for w in results)) + ".", "",
             "| workload | contender | round s | x plain | first round s | start-up s | + lazy s | total s | peak MB | "
             "final acc |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for w in results:
        for name, r in w["results"].items():
            ratio = "reference" if name == "plain" else _ratio(r["ratio_to_plain"])
            lines.append(f"| {w['workload']} ({w['num_clients']} clients, {w['client_fraction']:g} per round) | {name} | "
                         f"{_range(r['round_s'])} | {ratio} | {r['first_round_s']['median']:.2f} | "
                         f"{r['startup_s']['median']:.1f} | {r['startup_with_lazy_s']['median']:.1f} | "
                         f"{r['wall_s']['median']:.1f} | {r['peak_mb']['median']:.0f} | "
                         f"{r['final_accuracy']:.4f} |")
    lines += ["", "**fedbench's start-up, phase by phase** (from each run's `summary.json` `startup` record, median "
              "(min-max) over the repeats): imports s = process start to fedbench's first line of run work (the "
              "interpreter, torch, Lightning, Hydra, composing the configuration); data s = reading MNIST, the "
              "split and the clients' tensors; build s = the other parts and their checks.", "",
              "| workload | contender | imports s | data s | build s |", "|---|---|---|---|---|"]
    for w in results:
        for name, r in w["results"].items():
            if "phases" in r:
                ph = r["phases"]
                lines.append(f"| {w['workload']} | {name} | {_range(ph['imports_s'], 2)} | {_range(ph['data_s'], 2)} | "
                             f"{_range(ph['build_s'], 3)} |")
    lines += ["", "**Vectorised vs sequential** (the last repeat's final server models): the same clients, batches "
              "and steps. By default the batched pass computes every product and update as the sequential loop's "
              "autograd and torch.optim.SGD do (equal on one thread); the fused update rounds differently.", "",
              "| workload | contender | final accuracy gap | max abs parameter gap |", "|---|---|---|---|"]
    lines += [f"| {w['workload']} | {name} | {gap['accuracy_gap']:.4f} | {gap['param_gap']:.2e} |"
              for w in results for name, gap in w.get("vectorized_vs_sequential", {}).items()]
    lines += ["", f"Regenerate: `{command}`", ""]
    (out / "clients.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS), choices=list(WORKLOADS))
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-flower", action="store_true", help="skip Flower (no environment built)")
    parser.add_argument("--flower-pinned", action="store_true", help="also run Flower pinned to one core (labelled)")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "bench")
    args = parser.parse_args()
    if not (MNIST_ROOT / "MNIST" / "raw").is_dir():
        sys.exit(f"real MNIST is expected in {MNIST_ROOT}/MNIST/raw (torchvision's layout)")
    if args.flower_pinned and not shutil.which("taskset"):
        sys.exit("taskset (util-linux) is needed to pin Flower to one core (--flower-pinned)")
    if args.rounds < 3:
        sys.exit("--rounds must be >= 3: round times are taken over rounds 2..")
    results = [measure(w, args.rounds, args.repeats, not args.no_flower, args.flower_pinned) for w in args.workloads]
    args.out.mkdir(parents=True, exist_ok=True)
    write_report(results, args.out, "uv run python benchmarks/bench_clients.py " + " ".join(sys.argv[1:]), args.repeats)
    print((args.out / "clients.md").read_text())


if __name__ == "__main__":
    main()
