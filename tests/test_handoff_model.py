"""FedML's and Flower's drivers unpickle the handoff model only if it is the exact file fedbench wrote: a pickle
planted in a shared run folder is refused before it can run code."""

import os
import pickle
import runpy

import pytest
import torch
from torch import nn

from fedbench.backends import handoff_model
from fedbench.backends.handoff import traced
from tests.conftest import ROOT


class _Planted:
    def __reduce__(self):
        return (os.system, (f"touch {os.environ['PLANTED_MARKER']}",))


def test_the_driver_loads_the_model_fedbench_wrote_and_refuses_a_planted_pickle(tmp_path, monkeypatch):
    path = tmp_path / "model.pt"
    torch.save(traced(nn.Sequential(nn.Linear(3, 2))), path)
    monkeypatch.setenv(handoff_model.ENV, handoff_model.sha256(path))
    # the drivers run the loader by path (they cannot import fedbench), as here
    load = runpy.run_path(str(ROOT / "fedbench" / "backends" / "handoff_model.py"))["load_model"]
    model = load(path)
    assert model(torch.ones(1, 3)).shape == (1, 2)

    marker = tmp_path / "pwned"
    monkeypatch.setenv("PLANTED_MARKER", str(marker))
    path.write_bytes(pickle.dumps(_Planted()))
    with pytest.raises(SystemExit, match="refusing to unpickle .* is not the one fedbench wrote"):
        load(path)
    assert not marker.exists()
    monkeypatch.delenv(handoff_model.ENV)
    with pytest.raises(SystemExit, match=r"started without \$FEDBENCH_MODEL_SHA256"):
        load(path)
    assert not marker.exists()


def test_every_torch_load_in_the_project_is_weights_only_or_says_why():
    unexplained = []
    for path in [*ROOT.glob("fedbench/**/*.py"), *ROOT.glob("benchmarks/**/*.py")]:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if "torch.load(" in line and "weights_only=True" not in line:
                context = " ".join(lines[max(0, i - 3): i + 1])
                if "weights_only=False" not in line or "handoff" not in context:
                    unexplained.append(f"{path.relative_to(ROOT)}:{i + 1}")
    assert unexplained == []
