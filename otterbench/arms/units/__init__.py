"""The arm units: one module per family of arms, each exporting `SPECS` (see otterbench/arms/spec.py).

Torch-free. `otterbench/arms/registry.py` registers every module listed in `BUILT_IN`; an arm from elsewhere
(a plugin, a test) calls `register_arm` with its own spec.
"""

BUILT_IN = ("base", "args", "dexperts", "accel")  # modules of this package, in registry order
