"""Seeded random benches: every solver's plan passes the independent checker, the lr
bound never exceeds HiGHS's proven optimum, the lr plan never beats it, and lr is never
worse than greedy."""

from __future__ import annotations

import itertools

import pytest

from bench import parse_dict
from bench.generate import GeneratorSpec, generate
from scheduler import (
    LrOptions,
    MilpOptions,
    build_problem,
    solve_greedy,
    solve_lr,
    solve_milp,
    verify_plan,
)

REL = 1e-6


def instances():
    # loaded enough that packets queue: ~4-5 packets per transfer in 14-22 slots
    for seed in range(12):
        transfers = 4 + seed % 4
        yield GeneratorSpec(
            "ring", 4 + seed % 3, transfers, 14 + 4 * (seed % 3), seed, 4 * transfers + seed % 5
        )
    for seed in range(4):
        yield GeneratorSpec("hotspot", 4 + seed % 2, 4, 10, seed)


@pytest.mark.parametrize(
    "spec", list(instances()), ids=lambda s: f"{s.family}-{s.routers}r-s{s.seed}"
)
def test_lr_brackets_the_milp_optimum(spec):
    scenario, topology = parse_dict(generate(spec))
    problem = build_problem(scenario, topology)
    milp = solve_milp(problem, MilpOptions(time_limit_s=60))
    assert milp.status == "optimal"
    lr = solve_lr(problem)
    greedy = solve_greedy(problem)
    for plan in (milp, lr, greedy):
        recomputed = verify_plan(scenario, plan.to_json())
        assert recomputed == pytest.approx(plan.objective, rel=1e-9, abs=1e-12)
    optimum = milp.objective
    tol = REL * max(1.0, abs(optimum))
    assert lr.objective >= optimum - tol
    assert lr.lower_bound <= optimum + tol
    assert greedy.objective >= optimum - tol
    assert lr.objective <= greedy.objective + 1e-12
    assert 0.0 <= lr.gap <= 1.0


def lp_relaxation(problem) -> float:
    """The LP relaxation of the exact model, by HiGHS on the time-expanded flow model of
    ``scheduler.milp`` (built apart from lr's column masters) with integrality dropped.
    No Lagrangian bound can exceed it, and the best one equals it."""
    import highspy

    from scheduler.milp import _ModelBuilder

    builder = _ModelBuilder(problem)
    builder.build()
    lp = builder.lp()
    lp.integrality_ = [highspy.HighsVarType.kContinuous] * lp.num_col_
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.passModel(lp)
    h.run()
    assert h.getModelStatus() == highspy.HighsModelStatus.kOptimal
    return h.getInfo().objective_function_value


@pytest.mark.parametrize(
    "spec", list(instances()), ids=lambda s: f"{s.family}-{s.routers}r-s{s.seed}"
)
def test_finishing_reaches_the_lp_bound_and_keeps_the_bracket(spec):
    """With a finishing budget, column generation lifts the certified bound to the LP
    relaxation (worked out apart, by HiGHS on the flow model), and HiGHS's pick of the
    pooled packets is still a feasible plan no better than the optimum."""
    scenario, topology = parse_dict(generate(spec))
    problem = build_problem(scenario, topology)
    optimum = solve_milp(problem, MilpOptions(time_limit_s=60)).objective
    relaxed = lp_relaxation(problem)
    plain = solve_lr(problem)
    lr = solve_lr(problem, LrOptions(finish_s=10.0))
    recomputed = verify_plan(scenario, lr.to_json())
    assert recomputed == pytest.approx(lr.objective, rel=1e-9, abs=1e-12)
    tol = REL * max(1.0, abs(optimum))
    assert lr.lower_bound <= relaxed + tol
    assert optimum - tol <= lr.objective <= plain.objective + 1e-12
    assert lr.lower_bound >= plain.lower_bound - 1e-12
    if lr.stats["finish"].get("converged"):
        assert lr.lower_bound == pytest.approx(relaxed, rel=REL, abs=1e-9)


def test_a_warm_start_from_the_same_problem_keeps_plan_and_bound_and_is_refused_for_another():
    """The frame loop plans the same transfers every frame and starts each plan where
    the last ended: never a worse plan or a lower bound than that one, and a start
    from another problem is ignored rather than trusted."""
    for spec, other in itertools.pairwise(list(instances())[:7]):
        scenario, topology = parse_dict(generate(spec))
        first = solve_lr(build_problem(scenario, topology))
        again = solve_lr(build_problem(scenario, topology), warm=first.warm)
        assert again.stats["warm"] and not first.stats["warm"]
        assert again.objective <= first.objective + 1e-12
        assert again.lower_bound >= first.lower_bound - 1e-12
        assert verify_plan(scenario, again.to_json()) == pytest.approx(again.objective, rel=1e-9)
        assert "warm" not in again.to_json()
        scenario2, topology2 = parse_dict(generate(other))
        fresh = solve_lr(build_problem(scenario2, topology2), warm=first.warm)
        assert not fresh.stats["warm"]
        assert verify_plan(scenario2, fresh.to_json()) == pytest.approx(fresh.objective, rel=1e-9)
