"""Compression: unbiasedness, top-k, error-feedback telescoping, exact wire bytes by hand, fp16 error,
and end to end: top-k 10% + EF close to FedAvg at a quarter of the bytes, gossip and ddp agreement."""

import math

import pytest
import torch
from omegaconf import OmegaConf

from fedbench.compress import roundtrip
from fedbench.compress.cast import cast
from fedbench.compress.channel import Channel, build_channel
from fedbench.compress.powersgd import powersgd
from fedbench.compress.qsgd import qsgd
from fedbench.compress.sign import sign
from fedbench.compress.sparsify import sparsify
from fedbench.errors import ConfigError
from fedbench.run import run
from fedbench.seeding import torch_generator

X = torch.tensor([0.5, -2.0, 0.1, 3.0, -0.7, 0.0, 1.2, -0.05, 0.8, -1.5], dtype=torch.float64)


@pytest.mark.parametrize("comp", [qsgd(levels=2), sparsify("randk", ratio=0.3)], ids=["qsgd", "randk"])
def test_unbiased_compressors(comp):
    draws = torch.stack([roundtrip(comp, X, torch_generator(0, i))[0] for i in range(4000)])
    mean, se = draws.mean(0), draws.std(0) / math.sqrt(len(draws))
    assert ((mean - X).abs() <= 4 * se + 1e-12).all()


def test_topk_keeps_exactly_the_k_largest_magnitudes():
    out, _, _ = roundtrip(sparsify("topk", ratio=0.3), X, None)
    assert out.nonzero().flatten().tolist() == [1, 3, 9]  # |3.0|, |-2.0|, |-1.5|
    assert torch.equal(out[[1, 3, 9]], X[[1, 3, 9]])


@pytest.mark.parametrize("feedback", ["ef", "ef21"])
def test_error_feedback_telescopes(feedback):
    """EF: sum of what arrived + the final residual = sum of the inputs. EF21: what arrives is h, and
    h_T - h_0 = sum of the transmitted corrections."""
    ch = Channel(sparsify("topk", ratio=0.2), "up", feedback)
    state, arrived, inputs = {}, [], []
    for t in range(6):
        x = torch.randn(10, generator=torch_generator(1, t), dtype=torch.float64)
        out, _, state = ch.send(x, "up", t, 0, state, "g")
        arrived.append(out)
        inputs.append(x)
    if feedback == "ef":
        assert torch.allclose(torch.stack(arrived).sum(0) + state["residual"]["g"], torch.stack(inputs).sum(0),
                              atol=1e-12)
    else:
        assert torch.equal(arrived[-1], state["estimate"]["g"])


def _residual_growth(comp, rounds: int = 200, d: int = 1000) -> float:
    """Largest error-feedback residual norm over ``rounds`` fresh Gaussian inputs, over the mean input norm."""
    ch, state, worst, norms = Channel(comp, "up", "ef"), {}, 0.0, []
    for t in range(rounds):
        x = torch.randn(d, generator=torch_generator(3, t), dtype=torch.float64)
        _, _, state = ch.send(x, "up", t, 0, state, "g")
        worst, norms = max(worst, float(state["residual"]["g"].norm())), norms + [float(x.norm())]
    return worst / (sum(norms) / len(norms))


@pytest.mark.parametrize("unscaled,rescaled", [
    (sparsify("randk", ratio=0.1, rescale=False), sparsify("randk", ratio=0.1)),
    (qsgd(levels=4, rescale=False), qsgd(levels=4)),
], ids=["randk", "qsgd"])
def test_error_feedback_residual_stays_bounded_with_the_contractive_variant(unscaled, rescaled):
    """With rescale=false the residual stays below 10x the input norm over 200 rounds; the rescaled (unbiased)
    operator, which build_channel refuses with error feedback, blows it up."""
    assert not unscaled.unbiased and rescaled.unbiased
    assert _residual_growth(unscaled) < 10
    assert _residual_growth(rescaled) > 100


def test_unscaled_randk_and_qsgd_by_hand():
    out, _, _ = roundtrip(sparsify("randk", ratio=0.3, rescale=False), X, torch_generator(0))
    kept = out.nonzero().flatten()
    assert len(kept) == 3 and torch.equal(out[kept], X[kept])  # the entries themselves, no d / k factor
    q, _, _ = roundtrip(qsgd(levels=4), X, torch_generator(0))
    scaled, _, _ = roundtrip(qsgd(levels=4, rescale=False), X, torch_generator(0))
    omega = min(10 / 16, math.sqrt(10) / 4)  # d / s^2 = 0.625 < sqrt(d) / s = 0.79
    assert torch.allclose(scaled, q / (1 + omega), atol=1e-12)


def test_wire_bytes_by_hand():
    assert roundtrip(sparsify("topk", ratio=0.3), X, None)[1] == 3 * 4 + 3 * 4  # k values + k int32 indices
    assert roundtrip(sparsify("topk", ratio=0.3, pack_indices=True), X, None)[1] == 12 + 2  # 3 x 4 bits -> 2 bytes
    assert roundtrip(qsgd(levels=4), X, torch_generator(0))[1] == 4 + 5  # norm + 10 x (1 + 3) bits
    assert roundtrip(sign(), X, None)[1] == 4 + 2  # scale + 10 bits
    assert roundtrip(cast("fp16"), X, None)[1] == 20
    # QSGD with Elias-gamma levels: levels l -> 2 floor(log2(l + 1)) + 1 bits, plus a sign bit if l > 0
    out = qsgd(levels=1, elias=True)
    msg, _ = out.encode(X, torch_generator(3), {})
    lv = msg["levels"].tolist()
    bits = sum(2 * math.floor(math.log2(v + 1)) + 1 + (v > 0) for v in lv)
    assert out.wire_bytes(msg) == 4 + math.ceil(bits / 8)
    # PowerSGD rank 1 on a 6 x 5 matrix and a bias of 6: (6 + 5) x 1 x 4 + 6 x 4 bytes
    x = torch.randn(36, generator=torch_generator(2))
    assert roundtrip(powersgd(rank=1), x, None, shapes=[(6, 5), (6,)])[1] == 44 + 24


def test_fp16_round_trip_error_is_bounded():
    x = torch.randn(1000, generator=torch_generator(5)) * 10
    out = roundtrip(cast("fp16"), x, None)[0]
    assert ((out - x).abs() <= x.abs() * 2**-11 + 1e-7).all()


def test_powersgd_is_exact_on_a_low_rank_matrix_after_warm_start():
    u, v = torch.randn(6, 1, generator=torch_generator(7)), torch.randn(1, 5, generator=torch_generator(8))
    m = (u @ v).reshape(-1)
    comp = powersgd(rank=1)
    out, _, state = roundtrip(comp, m, None, {}, shapes=[(6, 5)])
    assert torch.allclose(out, m, atol=1e-5) and "q0" in state  # rank-1 input: one power step recovers it


@pytest.mark.parametrize("overrides,message", [
    ("compressor=topk compressor.ratio=0", "compressor.ratio must be in (0, 1]"),
    ("compressor=randk compressor.ratio=1.5", "compressor.ratio must be in (0, 1]"),
    ("compressor=qsgd compressor.levels=0", "compressor.levels must be an integer >= 1"),
    ("compressor=powersgd compressor.rank=0", "compressor.rank must be an integer >= 1"),
    ("compressor=qsgd compressor.direction=sideways", "compressor.direction must be one of ['up', 'down', 'both']"),
    ("compressor=qsgd compressor.error_feedback=maybe", "compressor.error_feedback must be one of"),
    ("compressor=fp16 compressor.direction=down topology=hierarchical", "compressor.direction must be up with topology=hierarchical"),
    ("compressor=randk compressor.error_feedback=true", "compressor.error_feedback: ef needs a contractive compressor, "
     "but randk rescales its output to be unbiased"),
    ("compressor=qsgd compressor.error_feedback=ef21", "set compressor.rescale=false"),
])
def test_bad_compressor_settings_name_the_field(make_cfg, overrides, message):
    with pytest.raises(ConfigError) as err:
        run(make_cfg(*overrides.split()))
    assert message in str(err.value)


def test_powersgd_needs_a_weight_matrix():
    node = OmegaConf.create({"_target_": "fedbench.compress.powersgd.powersgd", "rank": 2})
    with pytest.raises(ConfigError, match="a model with weight matrices for powersgd"):
        build_channel(node, 0, [(10,), (3,)])


def test_topk_with_error_feedback_is_close_to_fedavg_at_a_quarter_of_the_bytes(make_cfg):
    plain = run(make_cfg("checkpoint_every=0"))
    topk = run(make_cfg("compressor=topk", "compressor.ratio=0.1", "compressor.error_feedback=true",
                        "checkpoint_every=0"))
    assert topk.summary["final_accuracy"] >= plain.summary["final_accuracy"] - 0.02
    assert topk.summary["total_bytes_up"] <= plain.summary["total_bytes_up"] / 4
    # the uplink ratio: fp32 uploads / wire uploads (k values + k int32 indices = 8k bytes for 4d: 5x at 10 %)
    assert topk.summary["compression_ratio"] == pytest.approx(plain.summary["total_bytes_up"] / topk.summary["total_bytes_up"])
    assert topk.summary["compression_ratio"] == pytest.approx(5.0, rel=1e-3)


@pytest.mark.parametrize("compressor", ["qsgd", "sign", "powersgd"])
def test_every_algorithm_path_runs_compressed(make_cfg, compressor):
    for alg in ("scaffold", "fednova", "fedadam"):
        contractive = ["compressor.rescale=false"] if compressor == "qsgd" else []
        result = run(make_cfg(f"algorithm={alg}", f"compressor={compressor}", "compressor.error_feedback=ef21", *contractive,
                              "rounds=2", "local_epochs=1", "checkpoint_every=0"))
        assert result.summary["compression_ratio"] > 1.2 and not result.summary["diverged"]


def test_down_compression_counts_the_broadcast(make_cfg):
    result = run(make_cfg("compressor=fp16", "compressor.direction=both", "rounds=2", "local_epochs=1"))
    p = result.summary["num_params"]
    for r in result.rows:
        assert r["bytes_down"] == 5 * 2 * p and r["bytes_up"] == 5 * 2 * p  # 5 clients, 2 bytes per entry
        assert r["compression_ratio"] == 2.0  # both directions compressed
    assert "view" in result.server and result.summary["compression_ratio"] == 2.0


@pytest.mark.slow
def test_compressed_gossip_and_star_on_ddp_equal_inprocess_and_resume(tmp_path):
    from tests.test_ddp import assert_ddp_and_resume_agree

    for name, args in {"gossip": ["topology=gossip", "client_fraction=1", "num_clients=8", "compressor=topk",
                                  "compressor.ratio=0.2", "topology.gamma=0.5", "local_epochs=1"],
                       "star": ["algorithm=scaffold", "compressor=powersgd", "compressor.error_feedback=true",
                                "num_clients=10", "client_fraction=0.5", "local_epochs=1"]}.items():
        assert_ddp_and_resume_agree(args, 3, 2, tmp_path / name)


@pytest.mark.slow
def test_data_parallel_uses_pytorchs_ddp_hooks_and_counts_their_bytes(make_cfg):
    base = ["paradigm=data_parallel", "backend=ddp", "backend.workers=2", "backend.threads=1", "rounds=3",
            "batch_size=20", "lr=0.1"]
    plain = run(make_cfg(*base))
    half = run(make_cfg(*base, "compressor=fp16"))
    power = run(make_cfg(*base, "compressor=powersgd", "compressor.rank=2"))
    steps = -(-719 // 10) * 3
    assert half.summary["total_bytes_up"] * 2 == plain.summary["total_bytes_up"]  # fp16_compress_hook: 2 bytes/entry
    # powerSGD_hook: 2 plain all-reduces, then P and Q of each weight matrix at rank 2: 200x64 -> (200+64) 2,
    # 200x200 -> (200+200) 2, 10x200 -> (10+200) 2 floats; biases whole. Ring bytes over 2 ranks = one rank's
    p = plain.summary["num_params"]
    compressed = ((200 + 64) * 2 + (200 + 200) * 2 + (10 + 200) * 2 + 200 + 200 + 10) * 4
    assert power.summary["total_bytes_up"] == 2 * p * 4 + (steps - 2) * compressed
    assert half.summary["final_accuracy"] > 0.85 and power.summary["final_accuracy"] > 0.8


def test_data_parallel_refuses_compressors_without_a_ddp_hook(make_cfg):
    with pytest.raises(ConfigError, match="compressor: paradigm=data_parallel compresses through PyTorch's DDP"):
        run(make_cfg("paradigm=data_parallel", "compressor=topk", "rounds=1"))
