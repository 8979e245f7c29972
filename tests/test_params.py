"""Aggregation math with hand-computed numbers."""

import pytest
import torch

from fedbench.params import flat_view, get_flat, mean, nbytes, set_flat, weighted_mean, weighted_sum


def test_weighted_mean_hand_computed():
    a, b = torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 0.0, -3.0])
    # weights 1 and 3: (1*a + 3*b) / 4 = [13/4, 2/4, -6/4]
    assert torch.allclose(weighted_mean([a, b], [1, 3]), torch.tensor([3.25, 0.5, -1.5]), atol=1e-7)
    # sample counts 600 and 200 weigh like 3:1
    assert torch.allclose(weighted_mean([a, b], [600, 200]), torch.tensor([1.75, 1.5, 1.5]), atol=1e-7)


def test_mean_and_weighted_sum():
    a, b = torch.tensor([1.0, -1.0]), torch.tensor([3.0, 5.0])
    assert torch.equal(mean([a, b]), torch.tensor([2.0, 2.0]))
    assert torch.equal(weighted_sum([a, b], [2, 0.5]), torch.tensor([3.5, 0.5]))


@pytest.mark.parametrize("weights", [[0, 0], [1, -1], []])
def test_weighted_mean_rejects_bad_weights(weights):
    vectors = [torch.zeros(2)] * len(weights)
    with pytest.raises(ValueError, match="weights"):
        weighted_mean(vectors, weights)


def test_flat_roundtrip_does_not_alias():
    model = torch.nn.Linear(3, 2)
    flat = torch.arange(8, dtype=torch.float32)
    set_flat(model, flat)
    assert torch.equal(model.weight, flat[:6].view(2, 3)) and torch.equal(model.bias, flat[6:])
    with torch.no_grad():
        model.weight.add_(1.0)
    assert torch.equal(flat, torch.arange(8, dtype=torch.float32))  # the source vector is untouched
    assert torch.equal(get_flat(model), flat + torch.tensor([1.0] * 6 + [0.0] * 2))
    assert flat_view(model).requires_grad


def test_set_flat_rejects_wrong_size():
    with pytest.raises(ValueError, match="9 entries"):
        set_flat(torch.nn.Linear(3, 2), torch.zeros(9))


def test_nbytes_counts_element_size():
    assert nbytes({"a": torch.zeros(10), "b": torch.zeros(3, dtype=torch.float16)}) == 10 * 4 + 3 * 2
