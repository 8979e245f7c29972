"""The network model against the closed forms, with hand-computed numbers."""

import pytest

from fedbench.errors import ConfigError
from fedbench.network import network, ring_allreduce_time, round_comm_time, star_time, tree_allreduce_time

NET = network(latency_s=0.01, bandwidth_gbps=8.0)  # 1e9 bytes/s


def test_ring_allreduce_closed_form():
    # 2(n-1)/n * S/B + 2(n-1) alpha with n = 4, S = 1e9 bytes: 1.5 s + 0.06 s
    assert ring_allreduce_time(NET, 4, 10**9) == pytest.approx(1.56)
    assert ring_allreduce_time(NET, 1, 10**9) == 0.0


def test_tree_allreduce_closed_form():
    # 2 ceil(log2 n) (alpha + S/B) with n = 5: 2 * 3 * (0.01 + 0.5) for S = 5e8
    assert tree_allreduce_time(NET, 5, 5 * 10**8) == pytest.approx(3.06)


def test_star_and_round_time():
    assert star_time(NET, 2 * 10**9, 10**9) == pytest.approx(3.02)
    ring = network(latency_s=0.01, bandwidth_gbps=8.0, collective="ring")
    assert round_comm_time(ring, 4, 0, 4 * 10**9) == pytest.approx(1.56)  # 4 uploads of 1e9 bytes
    assert round_comm_time(NET, 4, 2 * 10**9, 10**9) == pytest.approx(3.02)


@pytest.mark.parametrize("kwargs,field", [({"latency_s": -1}, "network.latency_s"),
                                          ({"bandwidth_gbps": 0}, "network.bandwidth_gbps"),
                                          ({"collective": "mesh"}, "network.collective")])
def test_bad_network_options(kwargs, field):
    with pytest.raises(ConfigError, match=field):
        network(**kwargs)
