"""The Numba subproblem kernel and its pure-NumPy twin give the same answers."""

from __future__ import annotations

import numpy as np
import pytest

from bench import bundled_path, load_with_topology, parse_dict
from bench.generate import GeneratorSpec, generate
from scheduler import build_problem
from scheduler.bundles import Prices
from scheduler.lagrangian import dual
from scheduler.lagrangian.reference import lagrangian_subproblems_numpy
from scheduler.plan import Assignment


def problems():
    yield "bench-4", build_problem(*load_with_topology(bundled_path()))
    yield "ring", build_problem(*parse_dict(generate(GeneratorSpec("ring", 10, 30, 300, 3, 600))))
    yield "hotspot", build_problem(*parse_dict(generate(GeneratorSpec("hotspot", 8, 20, 120, 1))))


@pytest.mark.parametrize(
    ("name", "problem"), list(problems()), ids=lambda x: x if isinstance(x, str) else ""
)
@pytest.mark.parametrize("density", [0.0, 0.05, 0.5])
@pytest.mark.parametrize("hints", ["none", "random"])
def test_numba_and_numpy_kernels_agree(name, problem, density, hints):
    """Whatever window spans the kernel is told to start from (its hints from the last
    iteration), its answer is the exact one, the NumPy twin's."""
    rng = np.random.default_rng(7)
    p = problem
    shape = (p.n_resources, p.n_slots)
    lam = np.where(rng.random(shape) < density, rng.random(shape) * 0.02, 0.0)
    mu = np.where(rng.random((len(p.store_ids), p.n_slots)) < density, 0.002, 0.0)
    active = lam.max(axis=1) > 0 if lam.size else np.zeros(0, bool)
    a, b = Assignment.empty(p), Assignment.empty(p)
    prices = Prices(lam, mu, active, 1.0)
    spans = np.zeros(p.n_transfers, dtype=np.int64)
    if hints == "random":
        spans = rng.integers(0, p.n_slots + 1, p.n_transfers)
    v_numba = dual.lagrangian_subproblems(p.arrays, prices, a.packets, spans)
    v_numpy = lagrangian_subproblems_numpy(p.arrays, prices, b.packets)
    assert v_numba == pytest.approx(v_numpy, rel=1e-12, abs=1e-12)
    assert np.array_equal(a.route, b.route)
    delivered = a.route >= 0
    assert np.array_equal(a.seg_slots[delivered], b.seg_slots[delivered])
