"""fedbench: a benchmark suite for federated learning."""

from fedbench.resolvers import register as _register_resolvers

_register_resolvers()
