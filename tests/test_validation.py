"""Bad input stops before any work, naming the field and the allowed values."""

import pytest

from fedbench.errors import ConfigError
from fedbench.run import run

CASES = [
    ("client_fraction=0", "client_fraction must be in (0, 1]"),
    ("client_fraction=1.5", "client_fraction must be in (0, 1]"),
    ("num_clients=0", "num_clients must be an integer >= 1"),
    ("num_clients=5000", "num_clients must be <= the 1438 training samples"),
    ("batch_size=0", "batch_size must be an integer >= 1 or null"),
    ("local_epochs=0", "local_epochs must be an integer >= 1"),
    ("rounds=0", "rounds must be an integer >= 1"),
    ("lr=-0.1", "lr must be > 0"),
    ("eval_every=0", "eval_every must be an integer >= 1"),
    ("target_accuracy=2", "target_accuracy must be in [0, 1]"),
    ("partitioner=dirichlet partitioner.alpha=0", "partitioner.alpha must be > 0"),
    ("partitioner=dirichlet partitioner.alpha=-1", "partitioner.alpha must be > 0"),
    ("algorithm.upload=everything", "algorithm.upload must be one of ['weights', 'pseudo_gradient']"),
    ("dataset=mnist dataset.root=/no/such/dir", "dataset.root must be an existing directory"),
]


@pytest.mark.parametrize("overrides,message", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_rejected_before_any_work(make_cfg, overrides, message):
    cfg = make_cfg(*overrides.split())
    with pytest.raises(ConfigError) as err:
        run(cfg)
    assert message in str(err.value)
    assert "(got " in str(err.value)
    assert not (__import__("pathlib").Path(cfg.output_dir) / "metrics.csv").exists()
