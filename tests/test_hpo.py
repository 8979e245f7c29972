"""Hyperparameter search (fedbench.hpo): samplers find known optima, pruning, crashes, parallel workers, storages."""

from __future__ import annotations

import csv
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
import yaml

from fedbench.errors import ConfigError
from fedbench.hpo import worker
from fedbench.hpo.__main__ import main, prepare
from fedbench.hpo.settings import parse
from fedbench.hpo.study import StudySpec
from fedbench.hpo.trial import suggest
from fedbench.run import run
from tests.conftest import ROOT, compose_config

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
QUICK = ["+hpo=fedavg_lr_fraction", "rounds=3", "local_epochs=1"]


def _quadratic_spec(tmp_path: Path, sampler: str, n_trials: int, params: dict) -> StudySpec:
    settings = parse({"params": params, "objectives": [{"metric": "final_loss", "direction": "minimize"}],
                      "sampler": sampler, "pruner": "none", "n_trials": n_trials, "n_startup_trials": 8}, "quadratic")
    return StudySpec(settings, (), str(tmp_path), f"journal:{tmp_path / 'journal.log'}", "quadratic", seed=0, rounds=1)


def _fake_run_trial(target: dict):
    """A cheap objective with a known optimum, through the real suggest/ask/tell loop."""

    def run_trial(trial, settings, overrides, folder):
        values = suggest(trial, settings.params)
        loss = sum((float(values[k]) - v) ** 2 for k, v in target.items())
        return {"state": "complete", "values": [loss], "params": values, "seconds": 0.0}

    return run_trial


@pytest.mark.parametrize("sampler", ["tpe", "cmaes"])
def test_sampler_finds_the_optimum_of_a_quadratic(tmp_path, monkeypatch, sampler):
    monkeypatch.setattr(worker, "run_trial", _fake_run_trial({"x": 1.3, "y": -2}))
    spec = _quadratic_spec(tmp_path, sampler, 60, {"x": {"type": "float", "low": -5.0, "high": 5.0},
                                                   "y": {"type": "int", "low": -4, "high": 4}})
    worker.work(spec)
    study = _study(tmp_path, name="quadratic")
    assert len(study.trials) == 60
    assert study.best_params["y"] == -2
    assert abs(study.best_params["x"] - 1.3) < 0.3, study.best_params


def test_grid_sampler_visits_each_point_once_and_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(worker, "run_trial", _fake_run_trial({"x": 0.5}))
    spec = _quadratic_spec(tmp_path, "grid", 100, {"x": {"type": "float", "low": 0.0, "high": 1.0, "step": 0.25}})
    worker.work(spec)
    study = _study(tmp_path, name="quadratic")
    assert sorted(t.params["x"] for t in study.trials) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert study.best_params == {"x": 0.5} and study.best_value == 0.0


@pytest.mark.parametrize("overrides, message", [
    (["hpo.sampler=bayes"], "hpo.sampler must be one of ['tpe', 'random', 'grid', 'cmaes', 'nsga2'] (got 'bayes')"),
    (["hpo.pruner=median", "hpo.objectives=[best_accuracy,total_bytes_up]"], "cannot prune a multi-objective study"),
    (["hpo.sampler=grid"], "hpo.params.lr: sampler=grid needs finite values"),
    (["+hpo.params.lrr={type:float,low:0.1,high:1}"], "hpo.params.lrr: 'lrr' is not a key of the composed config"),
    (["hpo.params.client_fraction={type:float,low:0.5,high:1.5}"],
     "hpo.params.client_fraction: the range [0.5, 1.5] holds invalid values: client_fraction must be in (0, 1]"),
    (["+hpo.trials=5"], "hpo.trials is not an hpo setting"),
    (["hpo.params.lr={type:categorical,choices:[0.1]}"], "Could not override 'hpo.params.lr'"),
    (["hpo.objectives=[{metric:accuracy}]"], "hpo.objectives[0].metric must be one of"),
    (["+hpo.params.algorithm={type:categorical,choices:[fedavg,fedprocs]}"], "algorithm is a config group"),
    (["hpo.params.lr={type:float,low:0.0,high:1.0,log:true}"], "hpo.params.lr.low must be > 0 when log: true"),
])
def test_bad_search_settings_are_refused_before_any_trial(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match=None) as err:
        prepare([*QUICK, f"hpo.dir={tmp_path / 'study'}", *overrides])
    assert message in str(err.value)
    assert not (tmp_path / "study" / "journal.log").exists()


@pytest.mark.parametrize("preset", sorted(p.stem for p in (ROOT / "conf" / "hpo").glob("*.yaml")))
def test_every_preset_passes_the_checks_and_its_ranges_hold_valid_runs(tmp_path, preset):
    spec, launcher = prepare([f"+hpo={preset}", f"hpo.dir={tmp_path}"])
    assert spec.settings.name == preset and spec.settings.params and launcher is not None
    assert (tmp_path / "study.yaml").exists() and not (tmp_path / "journal.log").exists()


def test_a_missing_preset_names_the_choices(capsys):
    assert main(["rounds=2"]) == 2
    err = capsys.readouterr().err
    assert "choose a search preset: +hpo=<name>, one of [" in err and "'fedavg_lr_fraction'" in err


def test_a_study_folder_of_another_config_is_refused(tmp_path):
    folder = tmp_path / "study"
    prepare([*QUICK, f"hpo.dir={folder}"])
    prepare([*QUICK, f"hpo.dir={folder}", "hpo.n_trials=50"])  # more trials: the same study, continued
    before = (folder / "study.yaml").read_text()
    with pytest.raises(ConfigError, match=r"holds a study of another configuration \(config.local_epochs: 1 there, 3 now; "):
        prepare([*QUICK[:-1], "local_epochs=3", f"hpo.dir={folder}"])
    assert (folder / "study.yaml").read_text() == before


def _study(folder: Path, name: str | None = None) -> optuna.Study:
    """The study in ``<folder>/journal.log`` (named after the folder unless ``name``)."""
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(folder / "journal.log")))
    return optuna.load_study(study_name=name or folder.resolve().name, storage=storage)


@pytest.mark.slow
def test_cli_writes_trials_best_and_plots_and_best_command_reproduces_the_trial(tmp_path):
    folder = tmp_path / "study"
    assert main([*QUICK, "hpo.n_trials=4", "hpo.pruner=none", f"hpo.dir={folder}"]) == 0
    rows = list(csv.DictReader((folder / "trials.csv").open()))
    assert [r["state"] for r in rows] == ["complete"] * 4
    assert all(Path(r["run_dir"], "summary.json").exists() and r["rounds"] == "3" for r in rows)
    best = yaml.safe_load((folder / "best.yaml").read_text())["best"]
    assert best["values"]["best_accuracy"] == max(float(r["best_accuracy"]) for r in rows)
    for name in ("optimization_history.png", "param_importances.png"):
        assert (folder / name).read_bytes()[:8] == PNG_MAGIC
    # best.yaml's command is a plain fedbench run that gives the trial's number again
    args = best["command"].split(" -m fedbench ", 1)[1].split()
    assert args[0] == "+hpo=fedavg_lr_fraction" and args[-2:] == best["overrides"]
    again = run(compose_config(args, tmp_path / "rerun")).summary
    assert again["best_accuracy"] == best["values"]["best_accuracy"]


@pytest.mark.slow
def test_median_pruner_stops_trials_below_the_median(tmp_path):
    folder = tmp_path / "study"
    assert main([*QUICK[:1], "partitioner=iid", "rounds=6", "local_epochs=1", "~hpo.params.client_fraction", "hpo.sampler=random",
                 "~hpo.params.lr", "+hpo.params.lr={type:categorical,choices:[0.3,0.000001]}", "hpo.n_trials=6",
                 "hpo.n_startup_trials=1", "hpo.n_warmup_rounds=1", f"hpo.dir={folder}"]) == 0
    rows = list(csv.DictReader((folder / "trials.csv").open()))
    pruned = [r for r in rows if r["state"] == "pruned"]
    assert pruned, rows
    assert all(r["param_lr"] == "1e-06" and int(r["rounds"]) < 6 and "pruned by the median pruner" in r["reason"]
               for r in pruned)
    assert all(r["state"] == "complete" for r in rows if r["param_lr"] == "0.3")


def _start(*args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "fedbench.hpo", *args], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


@pytest.mark.slow
def test_a_killed_worker_s_study_continues_on_rerun_and_its_lost_trial_resumes(tmp_path):
    folder = tmp_path / "study"
    args = ["+hpo=fedavg_lr_fraction", "rounds=40", "local_epochs=1", "hpo.pruner=none", "hpo.n_trials=4",
            "hpo.heartbeat_s=0.5", "hpo.grace_s=3", f"hpo.dir={folder}"]
    proc = _start(*args)
    deadline = time.time() + 300
    while True:  # two trials finished and a third one some rounds in
        assert proc.poll() is None and time.time() < deadline, proc.stdout.read() if proc.poll() is not None else "timeout"
        try:  # the journal file exists a moment before the study's creation is written to it
            trials = _study(folder).trials if (folder / "journal.log").exists() else []
        except KeyError:
            trials = []
        if trials:
            running = [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
            done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
            if len(done) >= 2 and running and (Path(running[0].user_attrs.get("run_dir", "/none")) / "checkpoint").exists():
                break
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    lost = running[0]
    kept = {t.number: (t.params, t.values) for t in _study(folder).trials if t.state == optuna.trial.TrialState.COMPLETE}
    rerun = _start(*args)
    out, _ = rerun.communicate(timeout=600)
    assert rerun.returncode == 0, out[-3000:]
    trials = _study(folder).trials
    assert {t.number: (t.params, t.values) for t in trials if t.number in kept} == kept  # nothing finished was lost
    failed = trials[lost.number]
    assert failed.state == optuna.trial.TrialState.FAIL and "worker lost" in failed.user_attrs["reason"]
    retry = [t for t in trials if optuna.storages.RetryFailedTrialCallback.retried_trial_number(t) == lost.number]
    assert len(retry) == 1 and retry[0].state == optuna.trial.TrialState.COMPLETE and retry[0].params == lost.params
    assert retry[0].user_attrs["run_dir"] == lost.user_attrs["run_dir"] and "resuming after round" in out
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 4
    metrics = list(csv.DictReader((Path(lost.user_attrs["run_dir"]) / "metrics.csv").open()))
    assert [int(r["round"]) for r in metrics] == list(range(1, 41))


@pytest.mark.slow
def test_two_local_workers_share_one_journal_without_duplicate_trials(tmp_path):
    folder = tmp_path / "study"
    assert main(["+hpo=fedavg_lr_fraction", "rounds=8", "local_epochs=1", "hpo.pruner=none", "hpo.n_trials=6",
                 "hpo.workers=2", "hydra/launcher=submitit_local", f"hpo.dir={folder}"]) == 0
    trials = _study(folder).trials
    finished = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert 6 <= len(finished) <= 7 and len(finished) == len(trials)  # at most workers - 1 over the budget
    assert len({t.user_attrs["run_dir"] for t in trials}) == len(trials)  # each trial ran once, in its own folder
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers took trials from the shared study
    for t in trials:
        rows = list(csv.DictReader((Path(t.user_attrs["run_dir"]) / "metrics.csv").open()))
        assert [int(r["round"]) for r in rows] == list(range(1, 9))


def _pg_bin(name: str) -> str | None:
    """A PostgreSQL server program: on PATH, or where Debian puts it (/usr/lib/postgresql/<version>/bin)."""
    import shutil

    found = shutil.which(name)
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    return found or (str(candidates[-1]) if candidates else None)


def _why_no_postgres() -> str | None:
    import shutil

    if not _pg_bin("pg_ctl") or not _pg_bin("initdb"):
        return "PostgreSQL's initdb/pg_ctl are not installed (Debian: apt-get install postgresql)"
    if os.geteuid() == 0 and not shutil.which("runuser"):
        return "running as root without runuser to start PostgreSQL as another user"
    return None


@pytest.fixture
def postgres():
    """A throwaway PostgreSQL server on a free local port (trust authentication); its URL."""
    import shutil
    import socket

    reason = _why_no_postgres()
    if reason:
        pytest.skip(reason)
    import tempfile

    data = Path(tempfile.mkdtemp(prefix="fedbench-pg-"))  # not under pytest's tmp: that is private to root
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    init = subprocess.run([*as_user, _pg_bin("initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"], capture_output=True,
                          text=True, timeout=120)
    if init.returncode:
        pytest.skip(f"initdb failed: {init.stderr[-500:]}")
    start = subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-w", "-l", str(data / "log"), "-o",
                            f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start"], capture_output=True,
                           text=True, timeout=120)
    if start.returncode:
        pytest.skip(f"PostgreSQL did not start: {start.stderr[-500:]} {start.stdout[-500:]}")
    yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/postgres"
    subprocess.run([*as_user, _pg_bin("pg_ctl"), "-D", str(data), "-m", "fast", "stop"], capture_output=True, timeout=120)
    shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_postgresql_storage_runs_and_continues_a_study_and_never_writes_its_password(tmp_path, postgres, capsys, caplog):
    caplog.set_level(logging.INFO, logger="fedbench")
    folder = tmp_path / "study"
    # the throwaway server trusts local connections: the URL's password is ignored by it, but must not leak
    secret = postgres.replace("postgres@", "postgres:SECRETPW789@")
    assert main([*QUICK, "hpo.pruner=none", "hpo.n_trials=2", f"hpo.storage={secret}", f"hpo.dir={folder}"]) == 0
    assert main([*QUICK, "hpo.pruner=none", "hpo.n_trials=3", f"hpo.storage={secret}", f"hpo.dir={folder}"]) == 0
    study = optuna.load_study(study_name="study", storage=postgres)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE] * 3
    assert not (folder / "journal.log").exists()
    rows = list(csv.DictReader((folder / "trials.csv").open()))
    assert [float(r["best_accuracy"]) for r in rows] == [t.value for t in study.trials]
    printed = capsys.readouterr()
    shown = printed.out + printed.err + caplog.text  # the study's header line is logged
    assert "SECRETPW789" not in shown and "postgres:***@" in shown
    leaks = [p for p in folder.rglob("*") if p.is_file() and b"SECRETPW789" in p.read_bytes()]
    assert not leaks and "postgres:***@" in (folder / "study.yaml").read_text()


@pytest.mark.slow
def test_two_objectives_give_a_pareto_front_and_the_report_shows_the_study(tmp_path):
    from fedbench.report.__main__ import main as report

    folder = tmp_path / "study"
    assert main(["+hpo=fedavg_accuracy_vs_bytes", "rounds=2", "local_epochs=1", "hpo.n_trials=5", f"hpo.dir={folder}"]) == 0
    front = list(csv.DictReader((folder / "pareto_front.csv").open()))
    trials = list(csv.DictReader((folder / "trials.csv").open()))
    assert front and all(r["state"] == "complete" for r in trials)
    points = [(float(r["best_accuracy"]), float(r["total_bytes_up"])) for r in trials]
    for row in front:  # no trial beats a front member on both objectives
        acc, up = float(row["best_accuracy"]), float(row["total_bytes_up"])
        assert not any(a >= acc and b <= up and (a, b) != (acc, up) for a, b in points)
    assert (folder / "pareto_front.png").read_bytes()[:8] == PNG_MAGIC
    assert report([str(folder), "--out", str(tmp_path / "report")]) == 0
    text = (tmp_path / "report" / "systems_report.md").read_text()
    assert "### Study `study` (`+hpo=fedavg_accuracy_vs_bytes`)" in text and "Pareto front:" in text
    assert "trials: 5 complete" in text and (tmp_path / "report" / "hpo_study_pareto_front.png").exists()


def test_an_unreachable_database_is_refused_before_the_folder_records_the_study(tmp_path):
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg2://nobody@127.0.0.1:{port}/none"
    with pytest.raises(ConfigError, match=r"hpo.storage='postgresql\+psycopg2://nobody@127.0.0.1:\d+/none' cannot be opened"):
        prepare([*QUICK, f"hpo.storage={url}", f"hpo.dir={tmp_path / 'study'}"])
    assert not (tmp_path / "study" / "study.yaml").exists()  # so the corrected command is not refused later
    assert main([*QUICK, "hpo.storage=nonsense", f"hpo.dir={tmp_path / 'study'}"]) == 2
