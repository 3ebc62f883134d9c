"""MEC stage 1: deferred acceptance against a hand-worked case and against brute-force
enumeration of every matching (stability by checking all pairs; proposer-optimality)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.errors import ScenarioError
from bench.loader import bundled_path, load_with_topology, parse_text
from scheduler.mec import MecInstance, blocking_pairs, build_instance, deferred_acceptance
from scheduler.mec.matching import preferences


def _instance(loss: np.ndarray, demand: np.ndarray, quota: list[int]) -> MecInstance:
    n_src, n_srv = loss.shape
    return MecInstance(
        servers=tuple(f"S{j}" for j in range(n_srv)),
        sources=tuple(f"K{k}" for k in range(n_src)),
        demand_j=demand, available_j=np.ones(n_src), quota=np.asarray(quota),
        loss=loss, routes={}, routers=(), capacity_j=np.zeros(0), uses=(),
    )  # fmt: skip


def _all_matchings(inst: MecInstance):
    n_src, n_srv = inst.loss.shape
    options = [[None] + [k for k in range(n_src) if math.isfinite(inst.loss[k, j])]
               for j in range(n_srv)]  # fmt: skip
    for match in itertools.product(*options):
        if all(match.count(k) <= inst.quota[k] for k in range(n_src)):
            yield tuple(match)


def _brute_blocking(inst: MecInstance, match) -> bool:
    """Independent stability check straight from the ranking rules (not via the
    Preferences object): any unmatched pair that both sides would rather have."""
    n_src, n_srv = inst.loss.shape
    for k, j in itertools.product(range(n_src), range(n_srv)):
        if not math.isfinite(inst.loss[k, j]) or match[j] == k:
            continue
        cur = match[j]
        j_wants = cur is None or (inst.loss[k, j], k) < (inst.loss[cur, j], cur)
        if not j_wants:
            continue
        mine = [i for i in range(n_srv) if match[i] == k]
        if len(mine) < inst.quota[k]:
            return True

        def key(i: int, k: int = k) -> tuple[float, float, int]:
            return (inst.loss[k, i], -inst.demand_j[i], i)

        if any(key(j) < key(i) for i in mine):
            return True
    return False


def test_hand_worked_case():
    # Servers S0, S1, S2; sources K0 (quota 1), K1 (quota 2).
    # Losses (rows sources): K0: .01 .02 .03 ; K1: .05 .01 .02
    # Servers' lists: S0: K0,K1  S1: K1,K0  S2: K1,K0
    # Sources' lists: K0: S0,S1,S2  K1: S1,S2,S0
    # Server-proposing: S0->K0 held, S1->K1 held, S2->K1 held (quota 2): {S0:K0, S1:K1, S2:K1}
    loss = np.array([[0.01, 0.02, 0.03], [0.05, 0.01, 0.02]])
    inst = _instance(loss, np.array([5.0, 5.0, 5.0]), [1, 2])
    prefs = preferences(inst)
    assert deferred_acceptance(prefs, "servers") == (0, 1, 1)
    assert deferred_acceptance(prefs, "sources") == (0, 1, 1)
    # K1 with quota 1: S2 is rejected by K1 and by K0 (full with S0, which K0 prefers)
    inst = _instance(loss, np.array([5.0, 5.0, 5.0]), [1, 1])
    assert deferred_acceptance(preferences(inst), "servers") == (0, 1, None)


def test_demand_breaks_source_ties():
    # equal losses: the source takes the server with the larger demand first
    loss = np.array([[0.02, 0.02]])
    inst = _instance(loss, np.array([1.0, 9.0]), [1])
    assert deferred_acceptance(preferences(inst), "servers") == (None, 0)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_against_every_matching(data):
    n_src = data.draw(st.integers(1, 3))
    n_srv = data.draw(st.integers(1, 4))
    # few distinct loss levels make ties, and some pairs unreachable
    levels = st.sampled_from([0.01, 0.02, 0.03, math.inf])
    loss = np.array([[data.draw(levels) for _ in range(n_srv)] for _ in range(n_src)])
    demand = np.array([data.draw(st.sampled_from([1.0, 2.0])) for _ in range(n_srv)])
    quota = [data.draw(st.integers(1, 2)) for _ in range(n_src)]
    inst = _instance(loss, demand, quota)
    prefs = preferences(inst)
    stable = [m for m in _all_matchings(inst) if not _brute_blocking(inst, m)]
    assert stable  # a stable matching always exists
    srv_rank = lambda j, k: math.inf if k is None else (loss[k, j], k)  # noqa: E731
    for proposer in ("servers", "sources"):
        match = deferred_acceptance(prefs, proposer)
        assert match in stable
        assert blocking_pairs(prefs, match) == []
    # server-proposing: every server at least as well off as in any stable matching
    best = deferred_acceptance(prefs, "servers")
    for m in stable:
        for j in range(n_srv):
            a, b = best[j], m[j]
            assert b is None or (a is not None and srv_rank(j, a) <= srv_rank(j, b))
    # source-proposing: servers are no better off than under server-proposing
    worst = deferred_acceptance(prefs, "sources")
    for j in range(n_srv):
        a, b = best[j], worst[j]
        assert b is None or (a is not None and srv_rank(j, a) <= srv_rank(j, b))


def test_bench_loss_fractions_by_hand():
    scenario, topology = load_with_topology(bundled_path("bench-4-mec"))
    inst = build_instance(scenario, topology)
    # PV1 -> MEC1 on R1: accesses 0.02 + 0.03 ohm, 6 A at 48 V: 6 * 0.05 / 48
    assert inst.loss[0, 0] == pytest.approx(6 * 0.05 / 48)
    # PV1 -> MEC3 via L41: 6 * (0.02 + 0.09 + 0.03) / 48
    assert inst.loss[0, 2] == pytest.approx(6 * 0.14 / 48)
    assert inst.routes[(0, 2)] == ("PV1", "L41", "MEC3")
    # demands: MEC1 fixed, 40 x 0.5 J
    assert inst.demand_j[0] == pytest.approx(20.0)


def _bench_text() -> str:
    return bundled_path("bench-4-mec").read_text()


@pytest.mark.parametrize(
    ("old", "new", "expect"),
    [
        ("quota = 2 ", "quota = 0 ", "mec.quota: must be >= 1"),
        ("requests = 40", "requests = -1", "mec.servers[0].requests: must be >= 0"),
        ("requests_mean = 60", "requests_mean = -6.0", "mec.servers[1].requests_mean"),
        ('terminal = "MEC3"', 'terminal = "BAT1"', "mec.servers[2].terminal: terminal 'BAT1'"),
    ],
)
def test_bad_input_located(old, new, expect):
    text = _bench_text()
    assert old in text
    with pytest.raises(ScenarioError) as err:
        parse_text(text.replace(old, new, 1), "b.toml")
    assert expect in str(err.value)
    assert str(err.value).startswith("b.toml:")
    assert "\n" not in str(err.value)


def test_no_server_and_unreachable_server():
    text = _bench_text()
    head, _, _ = text.partition("[[mec.servers]]")
    with pytest.raises(ScenarioError, match="no MEC server"):
        parse_text(head + '[[mec.sources]]\nterminal = "PV1"\navailable_j = 1.0\n', "b.toml")
    # lines to R4 carry 5 A and the SOP 100 W: a 6 A server on R4 is cut off, refused
    # when the scenario is read, at the line of MEC3's entry
    cut = text.replace("max_current_a = 15.0", "max_current_a = 5.0")
    cut = cut.replace("max_power_w = 800.0", "max_power_w = 100.0")
    with pytest.raises(ScenarioError) as err:
        parse_text(cut, "b.toml")
    line = cut.splitlines().index('terminal = "MEC3"') + 1
    assert str(err.value) == (
        f"b.toml:{line}: mec.servers[2].terminal: no source reaches server 'MEC3' within "
        "the route limits (6 A at 48 V); add a line or a source near it, or lower its "
        "current_a"
    )
    # at 5 A the lines carry it again
    parse_text(cut.replace("current_a = 6.0", "current_a = 5.0"), "b.toml")


def test_a_source_below_the_servers_voltage_cannot_feed_it():
    # PV2 at 24 V cannot send 48 V packets: MEC2 is fed by PV1 only, over its route
    pv2 = 'id = "PV2"\nkind = "source"\nat = "R3:0"\nvoltage_v = '
    text = _bench_text().replace(pv2 + "48.0", pv2 + "24.0")
    scenario, topology = parse_text(text, "b.toml")
    volts = {t.id: t.voltage_v for t in scenario.terminals}
    assert (volts["PV1"], volts["PV2"], volts["MEC2"]) == (48.0, 24.0, 48.0)
    inst = build_instance(scenario, topology)
    assert not np.isfinite(inst.loss[1, 1])  # PV2 -> MEC2
    assert inst.loss[0, 1] == pytest.approx(6 * (0.02 + 0.08 + 0.10 + 0.03) / 48)
