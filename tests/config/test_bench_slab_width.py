"""bench.slab_width times another revision's projectors against the working tree's: its switch must reach the
kernels SIRT really calls (the operator classes bind their projections when they are made)."""

from types import SimpleNamespace

import numpy as np
import pytest

from reconstruction.engine import operators, projectors


def test_switching_projectors_reaches_the_kernels_sirt_calls():
    pytest.importorskip("numba")
    from bench import slab_width

    calls = []

    def tracing(name):
        real = getattr(projectors, name)

        def kernel(*args, **kwargs):
            calls.append(name)
            return real(*args, **kwargs)

        return kernel

    traced = SimpleNamespace(**{name: tracing(name) for _, _, name in slab_width.KERNELS})
    try:
        slab_width._use(traced)
        from reconstruction.engine.iterative import sirt

        sino = np.ones((7, 3, 16), np.float32)
        sirt(sino, np.linspace(-60, 60, 7), iterations=2, ray_iterations=1, subsets=1)
    finally:
        slab_width._use(projectors)
    assert {"forward_slab", "forward_slab_ray", "_nb_back_update"} <= set(calls)
    assert operators.ParallelBeamProjector.project is projectors.forward_slab  # put back
    assert operators._nb_back_update is projectors._nb_back_update
