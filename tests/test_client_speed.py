"""Heterogeneous client speeds: simulated round time waits for the slowest client."""

import pytest

from fedbench.errors import ConfigError
from fedbench.run import run
from fedbench.workload import speed_factors


def test_speed_factors_given_uniform_or_lognormal():
    assert speed_factors(3, 0, 0.0, None) == [1.0, 1.0, 1.0]
    assert speed_factors(2, 0, 5.0, [0.5, 2]) == [0.5, 2.0]
    drawn = speed_factors(1000, 7, 0.5, None)
    assert drawn == speed_factors(1000, 7, 0.5, None)  # drawn once per run from the seed
    import math
    logs = [math.log(v) for v in drawn]
    assert abs(sum(logs) / len(logs)) < 0.05 and 0.45 < (sum(v * v for v in logs) / len(logs)) ** 0.5 < 0.55


def test_simulated_round_waits_for_slowest_client(make_cfg):
    slow = 0.25
    result = run(make_cfg("rounds=2", "num_clients=4", "client_fraction=1.0", f"client_speed.factors=[{slow},{slow},{slow},{slow}]"))
    for row in result.rows:
        slowest = (row["sim_round_s"] - row["comm_sim_s"]) * slow  # measured compute time of the slowest client
        assert row["compute_s"] / 4 - 1e-9 <= slowest <= row["compute_s"] + 1e-9
    assert result.rows[-1]["cum_sim_round_s"] == pytest.approx(sum(r["sim_round_s"] for r in result.rows))


def test_bad_speed_factors_are_refused(make_cfg):
    with pytest.raises(ConfigError, match=r"client_speed.factors must be null or a list of num_clients \(4\) numbers > 0"):
        run(make_cfg("num_clients=4", "client_speed.factors=[1,2]"))
    with pytest.raises(ConfigError, match="client_speed.sigma must be >= 0"):
        run(make_cfg("client_speed.sigma=-1"))
