"""The ``greedy`` planner: earliest-deadline-first list scheduling.

The baseline a user would write: transfers in order of deadline; each packet goes to the
earliest slot in which one of the transfer's routes is free end to end, on the cheapest
such route; packets pass straight through every router (no storage). A packet whose cost
would reach its value is left undelivered. It certifies nothing (no lower bound).
"""

from __future__ import annotations

import time

import numpy as np

from scheduler.plan import Assignment, Plan, to_plan
from scheduler.problem import PlanningProblem


def solve_greedy(problem: PlanningProblem) -> Plan:
    start = time.perf_counter()
    out, objective = _list_schedule(problem)
    solve_ms = (time.perf_counter() - start) * 1000.0
    return to_plan(
        problem, out, solver="greedy", objective=objective, lower_bound=None, solve_ms=solve_ms
    )


def greedy_assignment(problem: PlanningProblem) -> Assignment:
    """The greedy plan as per-packet arrays (a starting plan for other solvers)."""
    return _list_schedule(problem)[0]


def _list_schedule(problem: PlanningProblem) -> tuple[Assignment, float]:
    p = problem
    occupied = np.zeros((p.n_resources, p.n_slots), dtype=np.bool_)
    out = Assignment.empty(p)
    ptr = p.packet_ptr
    objective = 0.0
    order = np.lexsort((np.arange(p.n_transfers), p.tr_release, p.tr_deadline))
    for k in order:
        rel, dl, n = int(p.tr_release[k]), int(p.tr_deadline[k]), int(p.tr_packets[k])
        routes = np.arange(p.tr_route_ptr[k], p.tr_route_ptr[k + 1])
        placed = 0
        if n and routes.size:
            routes = routes[np.argsort(p.route_cost[routes], kind="stable")]
            free = np.stack(
                [
                    ~occupied[
                        p.route_res[p.route_res_ptr[r] : p.route_res_ptr[r + 1]], rel : dl + 1
                    ].any(axis=0)
                    for r in routes
                ]
            )
            offsets = np.arange(dl - rel + 1)
            choice = free.argmax(axis=0)  # cheapest free route per slot
            cost = p.route_cost[routes[choice]] + p.delay_price * offsets
            usable = np.flatnonzero(free.any(axis=0) & (cost < p.tr_value[k]))[:n]
            for w in usable:
                r = int(routes[choice[w]])
                t = rel + int(w)
                occupied[p.route_res[p.route_res_ptr[r] : p.route_res_ptr[r + 1]], t] = True
                slot = ptr[k] + placed
                out.route[slot] = r
                out.seg_slots[slot, : p.route_seg_ptr[r + 1] - p.route_seg_ptr[r]] = t
                objective += float(cost[w])
                placed += 1
        objective += float(p.tr_value[k]) * (n - placed)
    return out, objective
