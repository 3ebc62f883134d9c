"""Plans: the solvers' common output, and the plan JSON of docs/design.md."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from scheduler.bundles import Packets
from scheduler.problem import PlanningProblem


@dataclass(frozen=True, slots=True)
class PlannedPacket:
    transfer: str
    route: tuple[str, ...]
    slots: tuple[int, ...]  # slots[i]: the slot in which route[i] carries the packet


@dataclass(frozen=True)
class Plan:
    scenario: str
    solver: str
    objective: float
    lower_bound: float | None  # None: the solver certifies nothing
    solve_ms: float
    packets: tuple[PlannedPacket, ...]
    undelivered: dict[str, int]
    compile_ms: float = 0.0  # first-call JIT compile or cache load, not in solve_ms
    status: str = "ok"
    stats: dict[str, Any] = field(default_factory=dict)
    # what the next plan of the same problem may start from (lr's prices and plan); not
    # part of the plan file
    warm: object | None = field(default=None, repr=False, compare=False)

    @property
    def gap(self) -> float | None:
        return relative_gap(self.objective, self.lower_bound)

    @property
    def delivered(self) -> int:
        return len(self.packets)

    def to_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "solver": self.solver,
            "objective": self.objective,
            "lower_bound": self.lower_bound,
            "gap": self.gap,
            "solve_ms": round(self.solve_ms, 3),
            "compile_ms": round(self.compile_ms, 3),
            "status": self.status,
            "packets": [
                {"transfer": p.transfer, "route": list(p.route), "slots": list(p.slots)}
                for p in self.packets
            ],
            "undelivered": dict(self.undelivered),
            "stats": self.stats,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Plan:
        return cls(
            scenario=data["scenario"],
            solver=data["solver"],
            objective=float(data["objective"]),
            lower_bound=None if data.get("lower_bound") is None else float(data["lower_bound"]),
            solve_ms=float(data.get("solve_ms", 0.0)),
            packets=tuple(
                PlannedPacket(p["transfer"], tuple(p["route"]), tuple(int(s) for s in p["slots"]))
                for p in data["packets"]
            ),
            undelivered={k: int(v) for k, v in data.get("undelivered", {}).items()},
            compile_ms=float(data.get("compile_ms", 0.0)),
            status=data.get("status", "ok"),
            stats=dict(data.get("stats", {})),
        )


def relative_gap(objective: float, lower_bound: float | None) -> float | None:
    if lower_bound is None or not math.isfinite(lower_bound):
        return None
    if objective <= 0.0:
        return 0.0 if lower_bound >= objective - 1e-12 else None
    return max(0.0, (objective - lower_bound) / objective)


@dataclass
class Assignment:
    """Per-packet solver output: ``route[p]`` (-1: undelivered) and its segment slots."""

    route: NDArray[np.int64]
    seg_slots: NDArray[np.int64]

    @classmethod
    def empty(cls, problem: PlanningProblem) -> Assignment:
        n = problem.n_packets
        return cls(
            np.full(n, -1, dtype=np.int64),
            np.zeros((n, problem.max_segments), dtype=np.int64),
        )

    def copy(self) -> Assignment:
        return Assignment(self.route.copy(), self.seg_slots.copy())

    @property
    def packets(self) -> Packets:
        """The same arrays, as the Numba kernels take them."""
        return Packets(self.route, self.seg_slots)


def to_plan(
    problem: PlanningProblem,
    assignment: Assignment,
    *,
    solver: str,
    objective: float,
    lower_bound: float | None,
    solve_ms: float,
    compile_ms: float = 0.0,
    status: str = "ok",
    stats: dict[str, Any] | None = None,
    warm: object | None = None,
) -> Plan:
    packets: list[PlannedPacket] = []
    undelivered: dict[str, int] = {}
    ptr = problem.packet_ptr
    for k, tid in enumerate(problem.transfer_ids):
        missing = 0
        for p in range(ptr[k], ptr[k + 1]):
            r = int(assignment.route[p])
            if r < 0:
                missing += 1
                continue
            slots = problem.expand_slots(r, assignment.seg_slots[p])
            packets.append(PlannedPacket(tid, problem.route(r), tuple(slots)))
        undelivered[tid] = missing
    packets.sort(key=lambda p: (p.slots[0], p.transfer))
    return Plan(
        scenario=problem.scenario,
        solver=solver,
        objective=objective,
        lower_bound=lower_bound,
        solve_ms=solve_ms,
        packets=tuple(packets),
        undelivered=undelivered,
        compile_ms=compile_ms,
        status=status,
        stats=stats or {},
        warm=warm,
    )
