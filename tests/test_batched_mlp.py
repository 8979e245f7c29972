"""The vectorised backend's hand-derived batched pass (fedbench.backends.batched_mlp): its gradients equal
torch.func's, its fused SGD step equals gradient-then-step, only declared Linear-ReLU chains under cross-entropy take
it, and runs through it (equal clients stacked once, unequal ones gathered per step) equal the sequential loop: bit for
bit with plain SGD."""

from pathlib import Path

import pytest
import torch
from torch import nn

from fedbench.backends import vectorized_chunk
from fedbench.backends.batched_mlp import batched_grads, batched_sgd_step, linear_relu_chain
from fedbench.backends.vectorized_chunk import _grads, _named
from fedbench.tasks.classifier import ClassifierTask
from fedbench.tasks.models import cnn, logreg, mlp
from tests.test_vectorized import assert_same


def _chunk(task: nn.Module, k: int = 4, b: int = 10, shape=(1, 28, 28)):
    gen = torch.Generator().manual_seed(0)
    params = {n: v.detach().unsqueeze(0).expand(k, *v.shape) + 0.05 * torch.randn(k, *v.shape, generator=gen)
              for n, v in _named(task).items()}
    return params, torch.rand(k, b, *shape, generator=gen), torch.randint(0, 10, (k, b), generator=gen)


@pytest.mark.parametrize("model", [mlp((1, 28, 28), 10), mlp((1, 28, 28), 10, hidden=(64,)), logreg((1, 28, 28), 10)],
                         ids=["2nn", "one_hidden", "logreg"])
def test_hand_derived_gradients_equal_torch_func(model):
    task = ClassifierTask(model)
    layers = linear_relu_chain(task)
    assert layers is not None
    params, xs, ys = _chunk(task)
    grads, loss = batched_grads(layers)(params, xs, ys, {})
    ref_grads, ref_loss = _grads(task, None, None, True)(params, xs, ys, {})
    assert torch.allclose(loss, ref_loss, atol=1e-6)
    assert set(grads) == set(ref_grads)
    for name in grads:
        assert torch.allclose(grads[name], ref_grads[name], atol=1e-6), name


def test_fused_step_equals_gradient_then_sgd():
    task = ClassifierTask(mlp((1, 28, 28), 10))
    layers = linear_relu_chain(task)
    params, xs, ys = _chunk(task)
    grads, loss = batched_grads(layers)(params, xs, ys, {})
    expected = {n: p - 0.1 * grads[n] for n, p in params.items()}
    stepped = {n: p.clone() for n, p in params.items()}
    fused_loss = batched_sgd_step(layers)(stepped, xs, ys, 0.1)
    assert torch.allclose(fused_loss, loss, atol=0)
    for name in params:
        assert torch.allclose(stepped[name], expected[name], atol=1e-6), name


@pytest.mark.parametrize("model", [mlp((1, 28, 28), 10), logreg((1, 28, 28), 10)], ids=["2nn", "logreg"])
def test_each_client_steps_bit_for_bit_as_autograd_and_torch_optim_sgd(model):
    """The default step of each chunk row equals that client's own ``training_step`` + ``backward`` +
    ``torch.optim.SGD`` step exactly (gradients and updated weights, torch.equal), with batch sizes 10 and 7, on one
    torch thread (with more, a single client's matrix product may split its sums among the threads)."""
    task = ClassifierTask(model)
    layers = linear_relu_chain(task)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _rows_equal_their_own_steps(task, layers)
    finally:
        torch.set_num_threads(threads)


def _rows_equal_their_own_steps(task: ClassifierTask, layers: list[str]) -> None:
    for batch in (10, 7):
        params, xs, ys = _chunk(task, k=3, b=batch)
        stepped = {n: p.clone() for n, p in params.items()}
        grads, _ = batched_grads(layers)(params, xs, ys, {})
        # the backend's default step (vectorized_chunk._step_group): the gradients, then SGD's update in place
        torch._foreach_add_(list(stepped.values()), [grads[n] for n in stepped], alpha=-0.1)
        for row in range(3):
            with torch.no_grad():
                for name, p in task.named_parameters():
                    p.copy_(params[f"task.{name}"][row])
            task.zero_grad()
            task.training_step((xs[row], ys[row]), 0).backward()
            torch.optim.SGD(task.parameters(), lr=0.1).step()
            for name, p in task.named_parameters():
                assert torch.equal(grads[f"task.{name}"][row], p.grad), (batch, row, name)
                assert torch.equal(stepped[f"task.{name}"][row], p.detach()), (batch, row, name)


class _Squared(ClassifierTask):
    def training_step(self, batch, batch_idx):  # a different loss: the declaration is not inherited
        x, y = batch
        return (self.model(x).softmax(-1) - nn.functional.one_hot(y, 10)).pow(2).mean()


@pytest.mark.parametrize("task", [
    _Squared(mlp((1, 28, 28), 10)),
    ClassifierTask(mlp((1, 28, 28), 10, batch_norm=True)),
    ClassifierTask(cnn((1, 28, 28), 10)),
    ClassifierTask(nn.Sequential(nn.Flatten(), nn.Linear(784, 20), nn.Tanh(), nn.Linear(20, 10))),
    ClassifierTask(nn.Sequential(nn.Flatten(), nn.Linear(784, 10, bias=False))),
    ClassifierTask(nn.Sequential(nn.Flatten(start_dim=2), nn.Linear(28, 10))),
], ids=["own_training_step", "batchnorm", "cnn", "tanh", "no_bias", "partial_flatten"])
def test_only_declared_linear_relu_chains_under_cross_entropy_take_the_fast_path(task):
    assert linear_relu_chain(task) is None


@pytest.mark.parametrize("extra", [[], ["momentum=0.9", "weight_decay=0.001"]], ids=["plain_sgd", "momentum"])
def test_runs_through_the_fast_path_equal_the_sequential_loop(tmp_path: Path, monkeypatch, extra):
    stacked, fast = [], []
    stack, chain = vectorized_chunk._stack_in_step_order, vectorized_chunk.linear_relu_chain

    def spy_stack(*args):
        out = stack(*args)
        stacked.append(out is not None)
        return out

    def spy_chain(task):
        out = chain(task)
        fast.append(out is not None)
        return out

    monkeypatch.setattr(vectorized_chunk, "_stack_in_step_order", spy_stack)
    monkeypatch.setattr(vectorized_chunk, "linear_relu_chain", spy_chain)
    # iid over 9 clients: sizes 159 and 160, so chunks of two are sometimes equal (stacked) and sometimes not
    assert_same(["algorithm=fedavg", "num_clients=9", "client_fraction=1", "partitioner=iid", "rounds=2",
                 "local_epochs=2", *extra], tmp_path, "backend.chunk=2")
    assert fast and all(fast)
    assert True in stacked and False in stacked


def test_whole_runs_on_the_fast_path_equal_the_sequential_loop_bit_for_bit(tmp_path: Path, monkeypatch):
    """FedAvg on the 2NN, one torch thread: the vectorised run's server model and accuracies equal
    backend=inprocess exactly, through stacked and unstacked chunks; backend.fused_sgd=true takes the fused update
    and stays within 1e-5."""
    from fedbench.run import run
    from tests.conftest import compose_config

    fuse_args = []
    step = vectorized_chunk.batched_sgd_step

    def spy(layers):
        fuse_args.append(True)  # the fused step was built
        return step(layers)

    monkeypatch.setattr(vectorized_chunk, "batched_sgd_step", spy)
    args = ["algorithm=fedavg", "num_clients=9", "client_fraction=1", "partitioner=iid", "rounds=2", "local_epochs=2"]
    ref = run(compose_config([*args, "backend.threads=1"], tmp_path / "inprocess"))
    vec = run(compose_config([*args, "backend=vectorized", "backend.chunk=2", "backend.threads=1"], tmp_path / "vec"))
    assert torch.equal(vec.server["params"], ref.server["params"])
    assert [r["test_accuracy"] for r in vec.rows] == [r["test_accuracy"] for r in ref.rows]
    # the reported train loss is a batched mean (not the loss autograd differentiates): equal to float rounding
    assert [r["train_loss"] for r in vec.rows] == pytest.approx([r["train_loss"] for r in ref.rows], abs=1e-6)
    assert not fuse_args
    fused = run(compose_config([*args, "backend=vectorized", "backend.chunk=2", "backend.threads=1",
                                "backend.fused_sgd=true"], tmp_path / "fused"))
    assert fuse_args and all(fuse_args)
    assert torch.allclose(fused.server["params"], ref.server["params"], atol=1e-5, rtol=0)
