"""Secrets never leave in clear: a database URL's password and API keys are masked in what fedbench prints and in
every file it writes (the PostgreSQL case of HPO is in tests/test_hpo.py)."""

import os
import socket
import subprocess
import sys

import pytest

from fedbench.secrets import mask, mask_tree
from tests.conftest import ROOT


def test_mask_hides_url_passwords_and_keyed_secrets_and_nothing_else():
    assert mask("postgresql+psycopg2://user:pa55@host:5432/db") == "postgresql+psycopg2://user:***@host:5432/db"
    assert mask("WANDB_API_KEY=abc123 lr=0.1") == "WANDB_API_KEY=*** lr=0.1"
    assert mask("token: 'xyz'") == "token: '***'"
    assert mask("postgresql://user@host/db lr=0.1") == "postgresql://user@host/db lr=0.1"  # no password: unchanged
    assert mask_tree({"env": {"HF_TOKEN": "hf_1", "URL": "mysql://a:b@h/d"}, "n": [1, "x"]}) == \
        {"env": {"HF_TOKEN": "***", "URL": "mysql://a:***@h/d"}, "n": [1, "x"]}


def _leaks(folder, secrets: tuple[str, ...]) -> list[str]:
    return [str(p) for p in folder.rglob("*") if p.is_file() and any(s.encode() in p.read_bytes() for s in secrets)]


@pytest.mark.slow
def test_a_run_given_secrets_prints_and_writes_none_of_them(tmp_path):
    """An API key and a database password passed to a run (as job environment variables, the way a W&B key or a
    database URL reaches a job) appear in no line printed and no file written: .hydra/, summary.json, logs, W&B."""
    out = tmp_path / "run"
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true"}
    env.pop("HYDRA_FULL_ERROR", None)
    proc = subprocess.run([sys.executable, "-m", "fedbench", "rounds=1", "num_clients=4", "local_epochs=1",
                           "logger=[csv,wandb]", "+hydra.job.env_set.WANDB_API_KEY=SECRETKEY123",
                           "+hydra.job.env_set.DATABASE_URL=postgresql://user:SECRETPW456@db.example/x",
                           f"hydra.run.dir={out}"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "SECRET" not in proc.stdout + proc.stderr
    assert list(out.glob("wandb/offline-run-*/run-*.wandb")) and (out / "summary.json").exists()
    assert _leaks(out, ("SECRETKEY123", "SECRETPW456")) == []
    assert "postgresql://user:***@db.example/x" in (out / ".hydra" / "hydra.yaml").read_text()


def test_a_refused_database_url_is_masked_in_the_error_and_written_nowhere(tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"postgresql+psycopg2://nobody:SECRETPW321@127.0.0.1:{port}/none"
    proc = subprocess.run([sys.executable, "-m", "fedbench.hpo", "+hpo=fedavg_lr_fraction", f"hpo.storage={url}",
                           f"hpo.dir={tmp_path / 'study'}"], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "SECRETPW321" not in proc.stdout + proc.stderr and "nobody:***@127.0.0.1" in proc.stderr
    assert _leaks(tmp_path, ("SECRETPW321",)) == []
