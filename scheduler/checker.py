"""An independent plan checker: every constraint of docs/design.md, and the objective again.

Deliberately written apart from the solvers: it reads only the scenario models and the
plan JSON, walks routes through router ports itself and recomputes every cost from the
physical parameters, so a bug shared by the planners' compiled arrays cannot hide here.
The controller runs it on every plan before anything is sealed or uploaded.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from bench.models import PortRef, Scenario
from scheduler.errors import PlanCheckError


@dataclass
class CheckReport:
    objective: float = 0.0  # recomputed from the scenario
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


class _Net:
    """Ports of every resource, read straight from the scenario."""

    def __init__(self, s: Scenario) -> None:
        self.ends: dict[str, list[PortRef]] = {}
        self.kind: dict[str, str] = {}
        for t in s.terminals:
            self.ends[t.id] = [PortRef.parse(t.at)]
            self.kind[t.id] = "terminal"
        for line in s.lines:
            self.ends[line.id] = [PortRef.parse(line.a), PortRef.parse(line.b)]
            self.kind[line.id] = "line"
        for sop in s.sops:
            self.ends[sop.id] = [PortRef.parse(sop.a), PortRef.parse(sop.b)]
            self.kind[sop.id] = "sop"
        self.storage = {r.id: r.storage_packets for r in s.routers}

    def walk(self, route: list[str]) -> list[str] | str:
        """Routers between consecutive resources, or a description of the break."""
        if any(r not in self.ends for r in route):
            return f"unknown resource in route {route}"
        if (
            len(route) < 2
            or self.kind[route[0]] != "terminal"
            or self.kind[route[-1]] != "terminal"
        ):
            return f"route {route} must run from a terminal to a terminal"
        here = self.ends[route[0]][0].router
        routers, seen = [], {here}
        for rid in route[1:]:
            routers.append(here)
            ends = self.ends[rid]
            at_here = [e for e in ends if e.router == here]
            if not at_here:
                return f"{rid} is not attached to router {here} in route {route}"
            if self.kind[rid] == "terminal":
                if rid != route[-1]:
                    return f"terminal {rid} inside route {route}"
                break
            here = next(e.router for e in ends if e.router != here)
            if here in seen:
                return f"route {route} visits router {here} twice"
            seen.add(here)
        return routers


def check_plan(scenario: Scenario, plan: dict[str, Any], rel_tol: float = 1e-9) -> CheckReport:
    """Check a plan (as JSON dict) against a scenario; never raises on a bad plan."""
    s, report = scenario, CheckReport()
    net = _Net(s)
    tau = s.frame.slot_ms / 1000.0 - s.frame.guard_us / 1e6
    transfers = {t.id: t for t in s.transfers}
    limits = {t.id: (t.max_current_a, math.inf, t.resistance_ohm, 0.0) for t in s.terminals}
    limits |= {x.id: (x.max_current_a, math.inf, x.resistance_ohm, 0.0) for x in s.lines}
    limits |= {x.id: (math.inf, x.max_power_w, 0.0, x.loss_coeff) for x in s.sops}
    bad = report.problems.append

    if plan.get("scenario") != s.name:
        bad(f"plan is for scenario {plan.get('scenario')!r}, not {s.name!r}")
    used: dict[tuple[str, int], int] = {}
    held: Counter[tuple[str, int]] = Counter()
    delivered: Counter[str] = Counter()
    total = 0.0
    for n, pkt in enumerate(plan.get("packets", [])):
        where = f"packets[{n}]"
        tr = transfers.get(pkt.get("transfer"))
        if tr is None:
            bad(f"{where}: unknown transfer {pkt.get('transfer')!r}")
            continue
        route, slots = list(pkt.get("route", [])), list(pkt.get("slots", []))
        routers = net.walk(route)
        if isinstance(routers, str):
            bad(f"{where}: {routers}")
            continue
        if route[0] != tr.source or route[-1] != tr.sink:
            bad(f"{where}: route {route} does not join {tr.source} to {tr.sink}")
        if tr.paths and tuple(route) not in {tuple(x) for x in tr.paths}:
            bad(f"{where}: route {route} is not one of transfer {tr.id}'s paths")
        if len(slots) != len(route) or not all(isinstance(x, int) for x in slots):
            bad(f"{where}: needs one whole slot per route resource")
            continue
        deadline = s.frame.slots - 1 if tr.deadline_slot is None else tr.deadline_slot
        if min(slots) < 0 or max(slots) >= s.frame.slots:
            bad(f"{where}: slot outside the frame 0..{s.frame.slots - 1}")
        if slots[0] < tr.release_slot or slots[-1] > deadline:
            bad(
                f"{where}: slots {slots[0]}..{slots[-1]} outside window "
                f"{tr.release_slot}..{deadline}"
            )
        cost = 0.0
        for rid, slot in zip(route, slots, strict=True):
            max_i, max_p, ohm, coeff = limits[rid]
            if tr.current_a > max_i or tr.voltage_v * tr.current_a > max_p:
                bad(f"{where}: {rid} cannot carry {tr.voltage_v:g} V x {tr.current_a:g} A")
            if (rid, slot) in used:
                bad(f"{where}: {rid} carries packets[{used[(rid, slot)]}] in slot {slot} too")
            used[(rid, slot)] = n
            cost += tr.current_a**2 * ohm * tau + coeff * tr.voltage_v * tr.current_a * tau
        cost *= s.costs.loss_price_per_j
        for i, router in enumerate(routers):
            wait = slots[i + 1] - slots[i]
            if wait < 0:
                bad(f"{where}: leaves router {router} before it arrives")
            elif wait > 0 and net.storage[router] == 0:
                bad(f"{where}: waits {wait} slots at router {router}, which has no storage")
            for t in range(slots[i], slots[i] + max(wait, 0)):
                held[(router, t)] += 1
            cost += s.costs.hold_price_per_slot * max(wait, 0)
        cost += s.costs.delay_price_per_slot * (slots[-1] - tr.release_slot)
        delivered[tr.id] += 1
        total += cost
    for (router, t), count in sorted(held.items()):
        if count > net.storage[router]:
            bad(
                f"router {router} holds {count} packets in slot {t}, "
                f"storage is {net.storage[router]}"
            )
    stated: dict[str, Any] = plan.get("undelivered", {})
    missing: defaultdict[str, int] = defaultdict(int)
    for tr in s.transfers:
        missing[tr.id] = tr.packets - delivered[tr.id]
        if missing[tr.id] < 0:
            bad(f"transfer {tr.id}: {delivered[tr.id]} packets planned, only {tr.packets} asked")
        elif int(stated.get(tr.id, 0)) != missing[tr.id]:
            bad(
                f"transfer {tr.id}: undelivered says {stated.get(tr.id, 0)}, "
                f"plan leaves {missing[tr.id]}"
            )
        total += tr.value * max(missing[tr.id], 0)
    report.objective = total
    tol = rel_tol * max(1.0, abs(total))
    objective = plan.get("objective")
    if not isinstance(objective, int | float) or abs(objective - total) > tol:
        bad(f"objective {objective} does not match the recomputed {total:.12g}")
    bound = plan.get("lower_bound")
    if bound is not None and bound > total + tol:
        bad(f"lower_bound {bound} is above the plan's own objective {total:.12g}")
    return report


def verify_plan(scenario: Scenario, plan: dict[str, Any], rel_tol: float = 1e-9) -> float:
    """Raise ``PlanCheckError`` listing what is wrong; return the recomputed objective."""
    report = check_plan(scenario, plan, rel_tol)
    if not report.ok:
        raise PlanCheckError(report.problems)
    return report.objective
