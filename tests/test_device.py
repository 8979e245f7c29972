"""The ``device`` knob: ``device=cpu`` named explicitly runs the code a GPU takes (model, client data, server and
client states moved to the device once; batch orders and noise drawn on the CPU; results gathered onto the
device; checkpoints written on the CPU) and gives today's numbers; a device that is not there is refused
before anything is written."""

import socket

import pytest
import torch

from fedbench import device as devices
from fedbench.device import local_rank, resolve_device, to_device
from fedbench.errors import ConfigError
from fedbench.run import run
from tests.conftest import compose_config
from tests.test_ddp import assert_matches_inprocess

SMALL = ["num_clients=8", "client_fraction=0.5", "partitioner=quantity", "rounds=3", "local_epochs=1"]


@pytest.mark.parametrize("args", [
    ["algorithm=scaffold"],
    ["algorithm=fedprox", "backend=vectorized"],
    ["algorithm=fednova", "compressor=qsgd"],
    ["aggregator=krum", "client_fraction=1", "compressor=powersgd", "momentum=0.5"],
    ["topology=gossip", "compressor=topk", "client_fraction=1"],
    ["algorithm=fedadam", "privacy=dp_fedavg", "attack=gaussian"],
], ids=["scaffold", "vectorized_fedprox", "fednova_qsgd", "krum_powersgd", "gossip_choco_topk", "fedadam_dp_gaussian"])
def test_naming_the_cpu_device_changes_no_number(tmp_path, args):
    """``device=cpu`` named explicitly takes the device calls a GPU run takes and changes no number. What this cannot
    catch on a machine without a GPU: a tensor left on the wrong device (``test_cuda_run_matches_the_cpu_run`` does,
    on a GPU)."""
    default = run(compose_config([*SMALL, *args], tmp_path / "default"))
    explicit = run(compose_config([*SMALL, *args, "device=cpu"], tmp_path / "cpu"))
    assert explicit.summary["device"] == "cpu"
    assert [r["test_accuracy"] for r in explicit.rows] == [r["test_accuracy"] for r in default.rows]
    assert [r["bytes_up"] for r in explicit.rows] == [r["bytes_up"] for r in default.rows]
    if not torch.cuda.is_available():  # auto is the CPU here: the same numbers bit for bit
        assert default.summary["device"] == "cpu"
        assert torch.equal(explicit.server["params"], default.server["params"])


@pytest.mark.gpu
@pytest.mark.parametrize("args", [["algorithm=scaffold"], ["algorithm=fedprox", "backend=vectorized"],
                                  ["algorithm=fedadam", "privacy=dp_fedavg"]], ids=["scaffold", "vectorized", "dp"])
def test_cuda_run_matches_the_cpu_run(tmp_path, args):
    """On a GPU: the same config on cuda and on the CPU gives the same accuracy curve up to float differences."""
    gpu = run(compose_config([*SMALL, *args, "device=cuda"], tmp_path / "gpu"))
    cpu = run(compose_config([*SMALL, *args, "device=cpu"], tmp_path / "cpu"))
    assert gpu.summary["device"].startswith("cuda")
    assert [r["test_accuracy"] for r in gpu.rows] == pytest.approx([r["test_accuracy"] for r in cpu.rows], abs=0.02)


def test_the_pipeline_refuses_a_gpu_device_before_any_work(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)  # as on a GPU machine: the device itself is accepted
    with pytest.raises(ConfigError, match=r"device must be cpu or auto with paradigm=pipeline"):
        run(compose_config(["paradigm=pipeline", "backend=ddp", "pipeline.stages=2", "batch_size=64", "device=cuda"],
                           tmp_path / "run"))
    assert not (tmp_path / "run").exists()


def test_ddp_ranks_gather_results_onto_the_named_device(tmp_path):
    # two forked gloo ranks with device=cpu: results travel as tensors and land on the device, as with NCCL on GPUs
    args = ["algorithm=scaffold", "rounds=2", "num_clients=6", "client_fraction=0.5", "partitioner=quantity"]
    run(compose_config([*args, "backend=ddp", "backend.workers=2", "backend.threads=1", "device=cpu"], tmp_path / "ddp"))
    assert_matches_inprocess(args, tmp_path / "ddp", tmp_path / "ref")


@pytest.mark.parametrize("backend", ["inprocess", "ddp"])
def test_checkpoints_hold_cpu_tensors_and_resume_on_another_device_setting(tmp_path, monkeypatch, backend):
    # written with device=cpu, continued with device=auto (a GPU run continued elsewhere): the device is not part of
    # the experiment's identity, the checkpoint's tensors are on the CPU and move to the resuming run's device
    args = [*SMALL, "algorithm=scaffold", f"backend={backend}"]
    with socket.socket() as s:  # backend=ddp here is a world of one in this process: a free port for its group
        s.bind(("127.0.0.1", 0))
        monkeypatch.setenv("MASTER_PORT", str(s.getsockname()[1]))
    full = run(compose_config([*args, "device=cpu"], tmp_path / "full"))
    run(compose_config([*args, "device=cpu", "rounds=2"], tmp_path / "resumed"))
    payload = torch.load(tmp_path / "resumed" / "checkpoint" / "checkpoint.pt", weights_only=True, map_location="meta")
    assert payload["server"]["params"].device.type == "meta"  # loads anywhere: nothing in it is tied to a GPU
    resumed = run(compose_config([*args, "device=auto"], tmp_path / "resumed"))
    assert [r["test_accuracy"] for r in resumed.rows] == [r["test_accuracy"] for r in full.rows]
    assert torch.equal(resumed.server["params"], full.server["params"])


@pytest.mark.parametrize("device, message", [
    ("tpu", "device must be auto, cpu, cuda, cuda:N or mps (got 'tpu')"),
    ("cuda:x", "device must be auto, cpu, cuda, cuda:N or mps (got 'cuda:x')"),
    (f"cuda:{torch.cuda.device_count()}", f"device must be cpu or auto on a machine with {torch.cuda.device_count()} "
                                          "CUDA GPU(s)"),
])
def test_a_device_that_is_not_there_is_refused_before_anything_is_written(tmp_path, device, message):
    with pytest.raises(ConfigError) as err:
        run(compose_config([f"device={device}"], tmp_path / "run"))
    assert message in str(err.value)
    assert not (tmp_path / "run").exists()


def test_mps_on_a_machine_without_it_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "mps_available", lambda: False)  # as on this Linux machine (and any non-Apple one)
    with pytest.raises(ConfigError) as err:
        run(compose_config(["device=mps"], tmp_path / "run"))
    assert str(err.value) == ("device must be auto, cpu or cuda on a machine without Apple MPS "
                              "(torch.backends.mps.is_available() is False) (got 'mps')")
    assert not (tmp_path / "run").exists()


def test_mps_is_refused_with_the_reason_while_fedbench_still_needs_float64_on_the_device(tmp_path, monkeypatch):
    monkeypatch.setattr(devices, "mps_available", lambda: True)  # an Apple-silicon Mac
    monkeypatch.setattr(devices, "cuda_count", lambda: 0)
    assert not devices.MPS_READY
    with pytest.raises(ConfigError, match=r"^device must be auto or cpu for now: Apple MPS has no float64"):
        run(compose_config(["device=mps"], tmp_path / "run"))
    assert not (tmp_path / "run").exists()
    assert resolve_device("auto") == torch.device("cpu")  # auto does not pick a device the run would fail on


def test_auto_picks_mps_on_a_mac_once_fedbench_is_mps_safe(monkeypatch):
    monkeypatch.setattr(devices, "mps_available", lambda: True)
    monkeypatch.setattr(devices, "MPS_READY", True)
    monkeypatch.setattr(devices, "cuda_count", lambda: 0)
    assert resolve_device("auto") == torch.device("mps") and resolve_device("mps") == torch.device("mps")
    monkeypatch.setattr(devices, "cuda_count", lambda: 1)  # a CUDA GPU still comes first
    assert resolve_device("auto") == torch.device("cuda", 0)


def test_the_centralized_baseline_runs_on_the_named_device(tmp_path):
    result = run(compose_config(["paradigm=centralized", "rounds=2", "device=cpu"], tmp_path / "run"))
    assert result.summary["device"] == "cpu"
    assert result.summary["final_accuracy"] > 0.5


def test_auto_is_the_cpu_without_a_gpu_and_the_local_rank_picks_the_gpu(monkeypatch):
    if torch.cuda.device_count() == 0:
        assert resolve_device("auto") == torch.device("cpu")
    for key in ("LOCAL_RANK", "SLURM_LOCALID", "OMPI_COMM_WORLD_LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    assert local_rank() == 0
    monkeypatch.setenv("SLURM_LOCALID", "3")
    assert local_rank() == 3
    monkeypatch.setenv("LOCAL_RANK", "1")  # torchrun's variable wins
    assert local_rank() == 1


def test_to_device_keeps_the_structure_and_copies_nothing_already_there():
    a, b = torch.ones(2), torch.zeros(3, dtype=torch.int64)
    tree = {"server": {"params": a}, "rows": [{"round": 1, "acc": 0.5}], "pair": (b, "x")}
    moved = to_device(tree, torch.device("cpu"))
    assert moved["server"]["params"] is a and moved["pair"][0] is b and moved["pair"][1] == "x"
    assert moved["rows"] == [{"round": 1, "acc": 0.5}]
    meta = to_device(tree, torch.device("meta"))
    assert meta["server"]["params"].device.type == "meta" and meta["pair"][0].dtype == torch.int64
