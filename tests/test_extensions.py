"""A new algorithm, topology, compressor and aggregator, each one module + one YAML outside fedbench (the recipes of
docs/explanation/architecture.md, written to a temporary folder on hydra.searchpath), run with each other and with
built-in parts; every pair either runs or is refused by a declared capability named in the message. No file of
fedbench is edited."""

import math
import re
import sys

import pytest
import torch

from fedbench.build import build
from fedbench.client import run_client
from fedbench.config import compose
from fedbench.errors import ConfigError
from fedbench.params import get_flat
from fedbench.run import run
from fedbench.sampling import sample_clients
from tests.conftest import ROOT

GUIDE = ROOT / "docs" / "explanation" / "architecture.md"
BLOCK = re.compile(r'```(?:python|yaml) title="([^"]+)"\n(.*?)```', re.S)
SMALL = ["num_clients=8", "client_fraction=0.5", "rounds=2", "local_epochs=1", "checkpoint_every=0"]
TOYS = {"fedhalf": "algorithm=fedhalf", "cyclic": "topology=cyclic", "gridq": "compressor=gridq",
        "clipmean": "aggregator=clipmean"}
BUILT_IN = {"median": "aggregator=median", "dp_fedavg": "privacy=dp_fedavg", "dropout": "dropout=0.2",
            "topk": "compressor=topk", "vectorized": "backend=vectorized"}
GROUP = {"fedhalf": "algorithm", "cyclic": "topology", "gridq": "compressor", "clipmean": "aggregator",
         "median": "aggregator", "topk": "compressor"}
# what each pair does: it runs, or it is refused naming this capability
EXPECTED = {
    ("fedhalf", "cyclic"): "runs", ("fedhalf", "gridq"): "runs", ("fedhalf", "clipmean"): "runs",
    ("cyclic", "gridq"): "compresses_uploads", ("cyclic", "clipmean"): "server_aggregation",
    ("gridq", "clipmean"): "runs",
    ("fedhalf", "median"): "runs", ("fedhalf", "dp_fedavg"): "runs", ("fedhalf", "dropout"): "runs",
    ("fedhalf", "topk"): "runs", ("fedhalf", "vectorized"): "runs",
    ("cyclic", "median"): "server_aggregation", ("cyclic", "dp_fedavg"): "single_aggregation",
    ("cyclic", "dropout"): "server_aggregation", ("cyclic", "topk"): "compresses_uploads", ("cyclic", "vectorized"): "runs",
    ("gridq", "median"): "runs", ("gridq", "dp_fedavg"): "runs", ("gridq", "dropout"): "runs",
    ("gridq", "vectorized"): "runs",
    ("clipmean", "dp_fedavg"): "is_mean", ("clipmean", "dropout"): "runs", ("clipmean", "topk"): "runs",
    ("clipmean", "vectorized"): "runs",
}


@pytest.fixture(scope="module")
def parts(tmp_path_factory):
    """The guide's recipe files, written where Python and Hydra find them."""
    folder = tmp_path_factory.mktemp("my_parts")
    blocks = BLOCK.findall(GUIDE.read_text())
    assert {name for name, _ in blocks} >= {"toy_fedhalf.py", "toy_cyclic.py", "toy_gridq.py", "toy_clipmean.py",
                                            "conf/algorithm/fedhalf.yaml", "conf/topology/cyclic.yaml",
                                            "conf/compressor/gridq.yaml", "conf/aggregator/clipmean.yaml"}
    for name, text in blocks:
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    sys.path.insert(0, str(folder))
    yield folder
    sys.path.remove(str(folder))


def _cfg(parts, out, *overrides):
    return compose([f"hydra.searchpath=[file://{parts}/conf]", *SMALL, *overrides], out)


def test_every_pair_runs_or_is_refused_by_a_named_capability(parts, tmp_path):
    pairs = [(a, b) for i, a in enumerate(TOYS) for b in [*list(TOYS)[i + 1:], *BUILT_IN]
             if GROUP.get(a) != GROUP.get(b)]
    assert sorted(pairs) == sorted(EXPECTED)
    everything = {**TOYS, **BUILT_IN}
    for n, (a, b) in enumerate(pairs):
        cfg = _cfg(parts, tmp_path / f"pair{n}", everything[a], everything[b])
        if EXPECTED[(a, b)] == "runs":
            result = run(cfg)
            assert len(result.rows) == 2 and math.isfinite(result.rows[-1]["train_loss"]), (a, b)
        else:
            with pytest.raises(ConfigError, match=EXPECTED[(a, b)]):
                run(cfg)
            assert not (tmp_path / f"pair{n}" / "status.json").exists()  # refused before any work


def test_the_cyclic_topology_trains_its_clients_in_turn(parts, tmp_path):
    """Round 1 with two sampled clients: the global model is client B trained from client A's trained model."""
    cfg = _cfg(parts, tmp_path / "cyclic", "topology=cyclic", "num_clients=4", "rounds=1")
    exp = build(cfg)
    a, b = sample_clients(4, 0.5, cfg.seed, 1)
    start = {"params": get_flat(exp.task)}
    first = run_client(exp.task, exp.algorithm, exp.plan, exp.client_data[a], start, {}, a, 1, 1).params
    second = run_client(exp.task, exp.algorithm, exp.plan, exp.client_data[b], {"params": first}, {}, b, 1, 1).params
    result = run(cfg)
    assert torch.equal(result.server["params"], second)
    assert result.rows[0]["messages_up"] == 2 and result.summary["topology"] == "cyclic"


def test_fedhalf_moves_half_way_to_fedavgs_model(parts, tmp_path):
    """One round of FedHalf (step 0.5) lands half way between the initial model and FedAvg's."""
    fedavg = run(_cfg(parts, tmp_path / "avg", "rounds=1"))
    half = run(_cfg(parts, tmp_path / "half", "algorithm=fedhalf", "rounds=1"))
    init = get_flat(build(_cfg(parts, tmp_path / "init", "rounds=1")).task)
    assert torch.allclose(half.server["params"], init + 0.5 * (fedavg.server["params"] - init), atol=1e-6)
