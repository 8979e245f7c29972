"""A latency-bandwidth (alpha-beta) network model: what a round's communication would cost.

Standard cost formulas (Thakur, Rabenseifner, Gropp, "Optimization of Collective Communication
Operations in MPICH", IJHPCA 2005; Patarasuk & Yuan, "Bandwidth optimal all-reduce algorithms",
JPDC 2009) for n participants exchanging S bytes each, link latency alpha (s), bandwidth B (B/s):

* star (parameter server, the server's link is the bottleneck):
  ``(alpha + total_down / B) + (alpha + total_up / B)``
* ring all-reduce: ``2 (n - 1) / n * S / B + 2 (n - 1) alpha``
* tree (binomial reduce then broadcast): ``2 ceil(log2 n) (alpha + S / B)``

A 2-core machine can thus say what a 100-node cluster would see for the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fedbench.errors import require, require_choice

COLLECTIVES = ("star", "ring", "tree")


@dataclass(frozen=True)
class Network:
    latency_s: float
    bandwidth_bytes_per_s: float
    collective: str = "star"


def network(latency_s: float = 0.001, bandwidth_gbps: float = 1.0, collective: str = "star") -> Network:
    """Build and validate a network model (bandwidth in gigabits per second)."""
    require(latency_s >= 0, "network.latency_s", ">= 0", latency_s)
    require(bandwidth_gbps > 0, "network.bandwidth_gbps", "> 0", bandwidth_gbps)
    require_choice(collective, "network.collective", COLLECTIVES)
    return Network(latency_s, bandwidth_gbps * 1e9 / 8, collective)


def star_time(net: Network, bytes_down: int, bytes_up: int) -> float:
    return 2 * net.latency_s + (bytes_down + bytes_up) / net.bandwidth_bytes_per_s


def ring_allreduce_time(net: Network, n: int, size: int) -> float:
    if n <= 1:
        return 0.0
    return 2 * (n - 1) / n * size / net.bandwidth_bytes_per_s + 2 * (n - 1) * net.latency_s


def tree_allreduce_time(net: Network, n: int, size: int) -> float:
    if n <= 1:
        return 0.0
    return 2 * math.ceil(math.log2(n)) * (net.latency_s + size / net.bandwidth_bytes_per_s)


def round_comm_time(net: Network, clients: int, bytes_down: int, bytes_up: int) -> float:
    """Simulated communication time of a round with ``clients`` participants and these byte totals."""
    if net.collective == "star":
        return star_time(net, bytes_down, bytes_up)
    per_client = bytes_up // max(clients, 1)
    fn = ring_allreduce_time if net.collective == "ring" else tree_allreduce_time
    return fn(net, clients, per_client)
