"""Data files that ship with cosim (the default hardware card)."""
