"""Energy to whole packets: within one packet of the allocation per pair, never past a
limit the allocation met, rounded up where the energy is there; and the MEC stage's
transfers for two of the bench's frames worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import bundled_path, load_with_topology
from router.controller.mec_stage import MecStage
from scheduler.mec import MecInstance
from scheduler.mec.packets import whole_packets
from tests import mec_bench as bench


def _two_servers_one_source(available: float, capacity: float = 1e9) -> MecInstance:
    return MecInstance(
        servers=("S0", "S1"), sources=("K0",), demand_j=np.array([10.0, 10.0]),
        available_j=np.array([available]), quota=np.array([2]),
        loss=np.array([[0.0, 0.0]]), routes={(0, 0): ("a",), (0, 1): ("b",)},
        routers=("R",), capacity_j=np.array([capacity]), uses=(((0, 1),),),
    )  # fmt: skip


def test_rounding_by_hand():
    def packets(x: list[float], available: float, capacity: float = 1e9) -> list[int]:
        inst = _two_servers_one_source(available, capacity)
        return whole_packets(inst, [(0, 0), (0, 1)], np.array(x), np.array([2.0, 2.0])).tolist()

    # plenty of energy: 5.5 and 3.2 packets both round up (servers not left short)
    assert packets([11.0, 6.4], 100.0) == [6, 4]
    # 18 J at the source: floors take 16 J (5 + 3 packets), one more packet fits, and it
    # goes to the less satisfied server (S1: 6/10 J against S0's 10/10)
    assert packets([11.0, 6.4], 18.0) == [5, 4]
    # S1's route crosses a router capped at 7 J: its extra packet would break the cap
    assert packets([11.0, 6.4], 100.0, 7.0) == [6, 3]
    # exact multiples stay as they are
    assert packets([4.0, 0.0], 100.0) == [2, 0]


@settings(max_examples=100, deadline=None)
@given(st.data())
def test_within_a_packet_and_the_limits(data):
    n_src, n_srv = data.draw(st.integers(1, 3)), data.draw(st.integers(1, 4))
    pairs = [(data.draw(st.integers(0, n_src - 1)), j) for j in range(n_srv)]
    e = np.array([data.draw(st.floats(0.5, 3.0)) for _ in pairs])
    x = np.array([data.draw(st.floats(0.0, 20.0)) for _ in pairs])
    # limits the allocation meets, some of them binding
    used = np.zeros(n_src)
    for (k, _), v in zip(pairs, x, strict=True):
        used[k] += v
    slack = np.array([data.draw(st.sampled_from([0.0, 0.7, 100.0])) for _ in range(n_src)])
    behind = tuple(p for p in pairs if data.draw(st.booleans()))
    cap = sum(x[pairs.index(p)] for p in behind) + data.draw(st.sampled_from([0.0, 1.0, 1e3]))
    inst = MecInstance(
        servers=tuple(f"S{j}" for j in range(n_srv)), sources=tuple(f"K{k}" for k in range(n_src)),
        demand_j=np.array([data.draw(st.floats(1.0, 30.0)) for _ in range(n_srv)]),
        available_j=used + slack, quota=np.full(n_src, n_srv),
        loss=np.full((n_src, n_srv), 0.02), routes={p: ("a",) for p in pairs},
        routers=("R",), capacity_j=np.array([cap]), uses=(behind,),
    )  # fmt: skip
    n = whole_packets(inst, pairs, x, e)
    sent = n * e
    assert np.all(np.abs(sent - x) < e + 1e-9)  # within one packet, per pair
    for k in range(n_src):
        from_k = sum(s for (kk, _), s in zip(pairs, sent, strict=True) if kk == k)
        assert from_k <= inst.available_j[k] + 1e-9
    assert sum(sent[pairs.index(p)] for p in behind) <= cap + 1e-9
    if slack.min() >= 100.0 and cap - sum(x[pairs.index(p)] for p in behind) >= 1e3:
        assert n.tolist() == [math.ceil(v / u - 1e-9) for v, u in zip(x, e, strict=True)]


@pytest.mark.parametrize("frame", [2, 8])  # R4's cap binds; everyone is satisfied
def test_stage_transfers_by_hand(frame):
    scenario, topology = load_with_topology(bundled_path("bench-4-mec"))
    out = MecStage().prepare(0, frame, scenario, topology)  # drawn by its number
    demand, sent, packets = bench.demands(frame), bench.pick(frame), bench.packets(frame)
    transfers = {t.sink: t for t in out.scenario.transfers}
    assert sorted(transfers) == ["MEC1", "MEC2", "MEC3"]
    for server, t in transfers.items():
        route = tuple(bench.ROUTES[(bench.MATCHING[server], server)][0])
        assert t.packets == packets[server]
        assert t.paths == (route,)
        assert (t.id, t.source, t.voltage_v, t.current_a) == (
            f"mec-{server}", route[0], 48.0, 6.0,
        )  # fmt: skip
        row = out.record["servers"][server]
        lossy = 1 - bench.loss_of(server)
        assert row["allocated_j"] == pytest.approx(sent[server] * lossy)
        assert row["planned_j"] == pytest.approx(t.packets * bench.E * lossy)
    sat = min(min(1.0, sent[s] * (1 - bench.loss_of(s)) / demand[s]) for s in demand)
    assert out.record["min_satisfaction"] == pytest.approx(sat)
    assert (sat < 1) == (frame == 2)
    # whole packets never break R4's cap (frame 2: 13 packets, 18.35 J of 19 J)
    assert packets["MEC3"] * bench.E <= bench.R4_CAP
