"""Whole frames: a planned bench frame sealed, committed by every router, metered."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bench import bundled_path, load_with_topology
from bench.models import MAX_PORTS
from firmware_bridge.headers import (
    OUTER_ENTRY_BYTES,
    STORE_PORT,
    FieldRangeError,
    HeaderRefusal,
    KeyEpochError,
    MisplacedEntryError,
    NonceConflictError,
    ReplayError,
    RouterHeaderState,
    SealError,
    SealingKeys,
    UnknownPartyError,
    open_inner,
    seal_frame,
)
from firmware_bridge.headers import layout as L
from scheduler import PlannedPacket, plan_transfers
from tests.header_keys import Identities, router_party, sealing_keys, terminal_party

SCENARIO, TOPOLOGY = load_with_topology(bundled_path())
PLAN = plan_transfers(SCENARIO, TOPOLOGY, "greedy")
IDS = Identities()


def keys(epoch: int = 1) -> SealingKeys:
    return sealing_keys(IDS, SCENARIO, epoch)


def router_state(router_id: str, epochs: tuple[int, ...] = (1,), **kw) -> RouterHeaderState:
    ring = IDS.ring("outer", router_party(SCENARIO, router_id), list(epochs), router_id)
    return RouterHeaderState(ring, **kw)


def meter_at(router_id: str, port: int) -> str | None:
    return next((t.id for t in SCENARIO.terminals if t.at == f"{router_id}:{port}"), None)


def test_bench_frame_round_trip():
    frame = 41
    sealed = seal_frame(SCENARIO, TOPOLOGY, keys(), frame, PLAN.packets, prices={"T1": 0.3})
    hops = sum(len(TOPOLOGY.hops(p.route)) for p in PLAN.packets)
    assert sealed.entries == hops  # greedy plans never hold packets
    delivered: Counter[tuple[int, int]] = Counter()
    for router_id, table in sealed.tables.items():
        assert all(len(blob) == OUTER_ENTRY_BYTES for _, _, blob in table)
        result = router_state(router_id).commit(frame, table)
        assert not result.refused and len(result.accepted) == len(table)
        for entry in result.accepted:
            sink = meter_at(router_id, entry.out_port)
            if sink is None:
                continue  # passes the packet on to a line or SOP
            party = terminal_party(SCENARIO, sink)
            ring = IDS.ring("inner", party, [1], router_id)
            got = open_inner(ring, entry.inner, epoch=entry.epoch, frame=frame, slot=entry.slot)
            transfer = SCENARIO.transfers[got.fields.transfer]
            assert transfer.sink == sink
            assert got.source == terminal_party(SCENARIO, transfer.source).index
            assert got.fields.energy_j == pytest.approx(
                transfer.packet_energy_j(SCENARIO.frame), abs=1e-4
            )
            assert got.fields.voltage_v == transfer.voltage_v
            assert entry.current_a == transfer.current_a
            assert got.fields.price == (0.3 if transfer.id == "T1" else 0.0)
            delivered[got.fields.transfer, got.fields.packet] += 1
    # every delivered packet metered exactly once, numbered 0.. within its transfer
    per_transfer = Counter(SCENARIO.transfers[k].id for k, _ in delivered)
    assert per_transfer == Counter(p.transfer for p in PLAN.packets)
    assert set(delivered.values()) == {1}
    for k, n in per_transfer.items():
        index = [t.id for t in SCENARIO.transfers].index(k)
        assert {p for t, p in delivered if t == index} == set(range(n))


def test_held_packet_becomes_two_store_entries():
    # PV1 -> L12 -> R2 (held from slot 4 to slot 7) -> L23 -> MEC2
    packet = PlannedPacket("T2", ("PV1", "L12", "L23", "MEC2"), (4, 4, 7, 7))
    sealed = seal_frame(SCENARIO, TOPOLOGY, keys(), 3, [packet])
    result = router_state("R2").commit(3, sealed.tables["R2"])
    moves = [(e.slot, e.in_port, e.out_port) for e in result.accepted]
    assert moves == [(4, 0, STORE_PORT), (7, STORE_PORT, 1)]
    assert [len(sealed.tables[r]) for r in ("R1", "R3")] == [1, 1]


def test_table_indices_count_entries_per_router_and_slot():
    a = PlannedPacket("T1", ("PV1", "MEC1"), (5, 5))
    b = PlannedPacket("T6", ("PV2", "L23", "L12", "MEC1"), (6, 6, 6, 6))
    c = PlannedPacket("T3", ("PV1", "L41", "MEC3"), (6, 6, 6))
    sealed = seal_frame(SCENARIO, TOPOLOGY, keys(), 3, [a, b, c])
    assert [(s, i) for s, i, _ in sealed.tables["R1"]] == [(5, 0), (6, 0), (6, 1)]


def test_two_packets_into_one_sink_in_one_slot_cannot_be_sealed():
    a = PlannedPacket("T1", ("PV1", "MEC1"), (5, 5))
    b = PlannedPacket("T6", ("PV2", "L23", "L12", "MEC1"), (5, 5, 5, 5))
    with pytest.raises(NonceConflictError, match="MEC1 in slot 5"):
        seal_frame(SCENARIO, TOPOLOGY, keys(), 3, [a, b])


def test_router_without_key_cannot_be_sealed():
    partial = keys()
    partial = SealingKeys(1, {k: v for k, v in partial.outer.items() if k != "R2"}, partial.inner)
    packet = PlannedPacket("T2", ("PV1", "L12", "L23", "MEC2"), (4, 4, 4, 4))
    with pytest.raises(UnknownPartyError, match="router 'R2'"):
        seal_frame(SCENARIO, TOPOLOGY, partial, 3, [packet])


def test_price_out_of_range_names_the_transfer():
    with pytest.raises(FieldRangeError) as info:
        seal_frame(SCENARIO, TOPOLOGY, keys(), 3, PLAN.packets, prices={"T4": 5000.0})
    assert info.value.field == "transfers[T4].price"
    assert "0..4294.967295" in str(info.value)


@pytest.mark.parametrize(
    ("slots", "words"), [((4, 4, 4), "4 resources but 3 slots"), ((4, 5, 3, 3), "before it")]
)
def test_malformed_packets_are_refused(slots, words):
    packet = PlannedPacket("T2", ("PV1", "L12", "L23", "MEC2"), slots)
    with pytest.raises(SealError, match=words):
        seal_frame(SCENARIO, TOPOLOGY, keys(), 3, [packet])


def _r1_table(frame: int, epoch: int = 1) -> list[tuple[int, int, bytes]]:
    return seal_frame(SCENARIO, TOPOLOGY, keys(epoch), frame, PLAN.packets).tables["R1"]


def test_committing_an_old_frame_number_is_a_replay():
    state = router_state("R1")
    state.commit(10, _r1_table(10))
    for frame in (10, 9):
        with pytest.raises(ReplayError) as info:
            state.commit(frame, _r1_table(frame))
        assert info.value.router_id == "R1" and info.value.frame == frame
    with pytest.raises(ReplayError):
        state.open_entry(10, *_r1_table(10)[0])
    assert state.last_committed == 10


def test_old_table_replayed_under_a_new_frame_number():
    state = router_state("R1")
    old = _r1_table(10)
    state.commit(10, old)
    result = state.commit(11, old)  # the attacker rewrites the frame number only
    assert not result.accepted
    assert {type(why) for _, _, why in result.refused} == {ReplayError}


def test_swapped_entries_are_refused_and_the_rest_stands():
    table = _r1_table(12)
    (s0, i0, b0), (s1, i1, b1) = table[0], table[1]
    tampered = [(s0, i0, b1), (s1, i1, b0), *table[2:]]
    result = router_state("R1").commit(12, tampered)
    assert len(result.accepted) == len(table) - 2
    assert [type(why) for _, _, why in result.refused] == [MisplacedEntryError] * 2


def test_old_epoch_accepted_for_the_grace_window_then_refused():
    state = router_state("R1", epochs=(1,), grace_frames=3)
    assert not state.commit(10, _r1_table(10, epoch=1)).refused
    # rotation: the router is provisioned with epoch 2, the controller seals with it
    state.provision(IDS.opening("outer", router_party(SCENARIO, "R1"), 2, "R1"))
    assert not state.commit(11, _r1_table(11, epoch=2)).refused
    assert state.epoch == 2 and state.epoch_since == 11
    for frame in (12, 13):  # grace: frames 11, 12, 13
        assert not state.commit(frame, _r1_table(frame, epoch=1)).refused
    result = state.commit(14, _r1_table(14, epoch=1))
    assert not result.accepted
    why = result.refused[0][2]
    assert isinstance(why, KeyEpochError) and "epoch 1 is retired" in str(why)
    assert why.router_id == "R1" and why.frame == 14


def test_unprovisioned_epoch_is_refused():
    state = router_state("R1", epochs=(1,))
    with pytest.raises(KeyEpochError, match="no key for epoch 5"):
        state.open_entry(20, *_r1_table(20, epoch=5)[0])


def test_store_port_is_not_a_real_port():
    assert MAX_PORTS - 1 < L.STORE_PORT  # ports run 0 .. MAX_PORTS - 1


@settings(max_examples=200, deadline=None)
@given(
    table=st.lists(
        st.tuples(st.integers(0, 65535), st.integers(0, 255), st.binary(max_size=80)),
        max_size=20,
    )
)
def test_fuzz_random_tables_are_refused_entry_by_entry(table):
    result = router_state("R1").commit(50, table)
    assert not result.accepted
    assert len(result.refused) == len(table)
    assert all(isinstance(why, HeaderRefusal) for _, _, why in result.refused)
