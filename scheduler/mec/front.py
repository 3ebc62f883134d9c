"""Fronts as objective matrices (one row per point: -mean, -min, loss; all minimised):
the non-dominated filter and the hypervolume indicator."""

from __future__ import annotations

import numpy as np
from pymoo.indicators.hv import HV
from pymoo.util.nds.non_dominated_sorting import NonDominatedSorting

EPS = 1e-9  # objective differences below this are solver round-off


def nondominated_mask(f: np.ndarray) -> np.ndarray:
    """True for the rows no other row dominates; of equal rows (within EPS) the first."""
    f = np.atleast_2d(np.asarray(f, dtype=float))
    keep = np.zeros(len(f), dtype=bool)
    if not len(f):
        return keep
    snapped = np.round(f / EPS) * EPS  # equal within round-off: one point
    _, first = np.unique(snapped, axis=0, return_index=True)
    first = np.sort(first)
    front = NonDominatedSorting(epsilon=EPS).do(snapped[first], only_non_dominated_front=True)
    keep[first[front]] = True
    return keep


MARGIN = 0.01  # the reference point's satisfaction: this far below 0


def reference_point(*fronts: np.ndarray) -> np.ndarray:
    """Satisfaction -0.01 (mean and min) and 1.1 x the largest loss of any front: every
    front point dominates it, and a front whose minimum satisfaction is 0 throughout
    (a server left unmatched) still has a volume."""
    worst = max((float(np.max(f[:, 2])) for f in fronts if len(f)), default=0.0)
    return np.asarray([MARGIN, MARGIN, 1.1 * worst if worst > 0 else 1.0])


def hypervolume(f: np.ndarray, ref: np.ndarray) -> float:
    """Volume of objective space the points dominate, up to ``ref``."""
    f = np.atleast_2d(np.asarray(f, dtype=float))
    if not f.size:
        return 0.0
    return float(HV(ref_point=ref)(f))
