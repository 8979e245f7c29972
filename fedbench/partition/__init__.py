"""Partitioners: factories returning pure, seeded ``(labels, num_clients, seed, groups) -> indices``."""
