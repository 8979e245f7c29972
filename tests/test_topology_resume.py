"""Every topology survives SIGKILL mid-run: the rerun continues from its checkpoint (node models,
edge servers, event queue and clock) and ends bit-identical to an uninterrupted run."""

import pytest
import torch

from fedbench.run import run
from tests.conftest import compose_config
from tests.test_resume import _checkpoint_round, _kill, _params, _rows, _start, _wait_for

TOPOLOGIES = {
    "gossip": ["topology=gossip", "client_fraction=1", "num_clients=8", "topology.graph=torus"],
    "hierarchical": ["topology=hierarchical", "algorithm=scaffold", "num_clients=10", "client_fraction=0.5"],
    "async": ["topology=async", "topology.concurrency=6", "topology.buffer_size=2", "client_speed.sigma=1",
              "num_clients=10"],
}


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TOPOLOGIES))
def test_sigkill_then_rerun_is_bit_identical(tmp_path, name):
    args = [*TOPOLOGIES[name], "rounds=6", "local_epochs=10"]
    proc = _start(*args, f"hydra.run.dir={tmp_path / 'killed'}")
    _wait_for(lambda: _checkpoint_round(tmp_path / "killed") >= 2, proc)
    _kill(proc)
    done = _checkpoint_round(tmp_path / "killed")
    assert 2 <= done < 6 and not (tmp_path / "killed" / "summary.json").exists()
    rerun = _start(*args, f"hydra.run.dir={tmp_path / 'killed'}")
    assert rerun.wait(timeout=300) == 0, rerun.stdout.read()[-3000:]
    run(compose_config(args, tmp_path / "whole"))
    assert _rows(tmp_path / "killed") == _rows(tmp_path / "whole")
    assert torch.equal(_params(tmp_path / "killed"), _params(tmp_path / "whole"))
