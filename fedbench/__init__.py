"""fedbench: a benchmark suite for federated learning."""
