"""One frame studied in full (what ``ppr allocate`` shows): the matching, the exact front
and NSGA-II's, the pick rule's point, the unrestricted LP, and the hypervolumes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scheduler.mec.allocation import (
    DEFAULT_GRID,
    AllocationLp,
    Pair,
    all_pairs,
    exact_front,
    objective_vector,
    pick,
)
from scheduler.mec.front import hypervolume, reference_point
from scheduler.mec.instance import MecInstance
from scheduler.mec.matching import (
    Matching,
    Proposer,
    blocking_pairs,
    deferred_acceptance,
    pairs_of,
    preferences,
)
from scheduler.mec.nsga import IMPROVED, NsgaResult, run_nsga

Progress = Callable[[str, int, int], None]  # phase, done, total


@dataclass(frozen=True)
class Study:
    inst: MecInstance
    proposer: Proposer
    matching: Matching
    blocking: list[tuple[int, int]]  # empty: the matching is stable
    pairs: list[Pair]  # the matched pairs: the allocation's variables
    front: list[np.ndarray]  # NSGA-II (improved), least loss first
    chosen: int  # the pick rule's point, an index into front
    nsga: NsgaResult
    exact: list[np.ndarray]  # the epsilon-constraint front
    grid: int
    free_pairs: list[Pair]  # every pair a route reaches
    unrestricted: np.ndarray  # the pick rule's point of the unrestricted LP
    reference: np.ndarray  # hypervolume reference point (-mean, -min, loss)
    hv_nsga: float
    hv_exact: float

    @property
    def hv_ratio(self) -> float:
        return self.hv_nsga / self.hv_exact if self.hv_exact > 0 else 1.0

    def front_matrix(self) -> np.ndarray:
        return _matrix(self.inst, self.pairs, self.front)

    def exact_matrix(self) -> np.ndarray:
        return _matrix(self.inst, self.pairs, self.exact)


def study(
    inst: MecInstance,
    proposer: Proposer = "servers",
    *,
    grid: int = DEFAULT_GRID,
    pop: int = 100,
    generations: int = 30,
    seed: int = 0,
    progress: Progress | None = None,
) -> Study:
    """``progress(phase, done, total)``: NSGA-II's generations, then the epsilon grid's
    levels (the rest takes a fraction of a second)."""
    tell = progress or (lambda phase, done, total: None)
    prefs = preferences(inst)
    match = deferred_acceptance(prefs, proposer)
    pairs = pairs_of(match)
    nsga = run_nsga(
        inst,
        pairs,
        IMPROVED,
        pop=pop,
        generations=generations,
        seed=seed,
        progress=lambda done, total: tell("NSGA-II generations", done, total),
    )
    exact = exact_front(
        inst, pairs, grid, lambda done, total: tell("epsilon grid levels", done, total)
    )
    free = all_pairs(inst)
    fn, fx = _matrix(inst, pairs, nsga.front), _matrix(inst, pairs, exact)
    ref = reference_point(fn, fx)
    return Study(
        inst=inst,
        proposer=proposer,
        matching=match,
        blocking=blocking_pairs(prefs, match),
        pairs=pairs,
        front=nsga.front,
        chosen=pick(inst, pairs, nsga.front),
        nsga=nsga,
        exact=exact,
        grid=grid,
        free_pairs=free,
        unrestricted=AllocationLp(inst, free).pick_point(),
        reference=ref,
        hv_nsga=hypervolume(fn, ref),
        hv_exact=hypervolume(fx, ref),
    )


def _matrix(inst: MecInstance, pairs: list[Pair], xs: list[np.ndarray]) -> np.ndarray:
    if not xs:
        return np.zeros((0, 3))
    return np.asarray([objective_vector(inst, pairs, x) for x in xs])
