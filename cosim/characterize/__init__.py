"""``cosim characterize``: SPICE sweeps of every block, surrogate fits, held-out validation."""
