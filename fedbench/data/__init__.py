"""Datasets: each loader returns a :class:`fedbench.data.base.FederatedData`."""
