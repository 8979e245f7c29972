"""Federated algorithms: one file each, a factory returning an :class:`Algorithm` record."""
