"""Sealing and opening single entries: limits, tampering, misplacement, fuzz."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge.headers import (
    INNER_ENTRY_BYTES,
    OUTER_ENTRY_BYTES,
    STORE_PORT,
    FieldRangeError,
    HeaderAuthError,
    HeaderFormatError,
    HeaderRefusal,
    InnerFields,
    KeyEpochError,
    MisplacedEntryError,
    OuterFields,
    Party,
    Position,
    ReplayError,
    open_inner,
    open_outer,
    seal_inner,
    seal_outer,
)
from firmware_bridge.headers import layout as L
from tests.header_keys import Identities

ROUTER = Party("router", "R2", 1)
OTHER_ROUTER = Party("router", "R3", 2)
SINK = Party("terminal", "MEC1", 4)
EPOCH = 2
IDS = Identities()


def outer_key(party: Party = ROUTER, epoch: int = EPOCH):
    return IDS.sealing("outer", party, epoch, party.name)


def inner_key(epoch: int = EPOCH):
    return IDS.sealing("inner", SINK, epoch, "R1")


def router_ring(party: Party = ROUTER, epochs: tuple[int, ...] = (EPOCH,)):
    return IDS.ring("outer", party, list(epochs), party.name)


def meter_ring(epochs: tuple[int, ...] = (EPOCH,)):
    return IDS.ring("inner", SINK, list(epochs), "R1")


INNER = InnerFields(transfer=3, packet=7, energy_j=1.8816, voltage_v=48.0, price=0.125)


def sealed_inner(frame: int = 100, slot: int = 9, source: int = 1) -> bytes:
    return seal_inner(inner_key(), frame, slot, source, INNER)


AT = Position(100, 9, 0)


def sealed_outer(at: Position = AT, party: Party = ROUTER) -> bytes:
    fields = OuterFields(in_port=1, out_port=3, voltage_v=48.0, current_a=8.0, inner=sealed_inner())
    return seal_outer(outer_key(party), at, fields)


def test_sizes_fit_the_budget():
    blob = sealed_outer()
    assert len(blob) == OUTER_ENTRY_BYTES == 63
    assert len(sealed_inner()) == INNER_ENTRY_BYTES == 32
    assert L.OUTER_NONCE.size == L.INNER_NONCE.size == L.NONCE_BYTES == 12


def test_round_trip_both_layers():
    inner = sealed_inner()
    entry = open_outer(router_ring(), sealed_outer(), Position(100, 9, 0))
    assert (entry.in_port, entry.out_port, entry.voltage_v, entry.current_a) == (1, 3, 48.0, 8.0)
    assert entry.inner == inner and entry.epoch == EPOCH
    got = open_inner(meter_ring(), entry.inner, epoch=entry.epoch, frame=100, slot=9)
    assert got.source == 1 and got.sink == SINK.index
    assert got.fields.transfer == 3 and got.fields.packet == 7
    assert got.fields.energy_j == pytest.approx(1.8816, abs=1e-9)
    assert got.fields.price == pytest.approx(0.125, abs=1e-12)


# (record, field, how to set it) for every variable field of both layers
PHYSICAL = [(L.VOLTAGE, "voltage_v"), (L.OUTER_BODY.field("current_limit"), "current_a")]
INNER_PHYSICAL = [
    (L.INNER_BODY.field("energy"), "energy_j"),
    (L.VOLTAGE, "voltage_v"),
    (L.INNER_BODY.field("price"), "price"),
]


@pytest.mark.parametrize("end", ["min", "max"])
def test_every_field_round_trips_at_its_limits(end):
    hi = end == "max"
    frame = L.FRAME.max_count if hi else 0
    slot = L.SLOT.max_count if hi else 0
    index = L.INDEX.max_count if hi else 0
    wide = L.ROUTER.max_count if hi else 0  # router, source, sink, transfer, packet: u16
    router = Party("router", "Rx", wide)
    sink = Party("terminal", "Tx", wide)
    inner_fields = InnerFields(
        transfer=wide,
        packet=wide,
        energy_j=INNER_PHYSICAL[0][0].max_value if hi else 0.0,
        voltage_v=L.VOLTAGE.max_value if hi else 0.0,
        price=INNER_PHYSICAL[2][0].max_value if hi else 0.0,
    )
    epoch = L.MAX_EPOCH if hi else 1
    seal_key = IDS.sealing("inner", sink, epoch, "Rx")
    inner = seal_inner(seal_key, frame, slot, wide, inner_fields)
    port = STORE_PORT if hi else 0
    amps = PHYSICAL[1][0].max_value if hi else 0.0
    fields = OuterFields(port, port, inner_fields.voltage_v, amps, inner)
    blob = seal_outer(
        IDS.sealing("outer", router, epoch, "Rx"), Position(frame, slot, index), fields
    )
    ring = IDS.ring("outer", router, [epoch], "Rx")
    entry = open_outer(ring, blob, Position(frame, slot, index))
    assert (entry.frame, entry.slot, entry.index, entry.epoch) == (frame, slot, index, epoch)
    assert (entry.in_port, entry.out_port, entry.inner) == (port, port, inner)
    for f, name in PHYSICAL:
        assert L.encode(f, getattr(entry, name)) == L.encode(f, getattr(fields, name))
    opened = open_inner(
        IDS.ring("inner", sink, [epoch], "Rx"), inner, epoch=epoch, frame=frame, slot=slot
    )
    assert (opened.source, opened.sink) == (wide, wide)
    assert (opened.fields.transfer, opened.fields.packet) == (wide, wide)
    for f, name in INNER_PHYSICAL:
        assert L.encode(f, getattr(opened.fields, name)) == L.encode(f, getattr(inner_fields, name))


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("voltage_v", L.VOLTAGE.max_value + 0.01),
        ("voltage_v", -0.01),
        ("voltage_v", float("nan")),
        ("current_a", 700.0),
        ("current_a", float("inf")),
    ],
)
def test_outer_values_out_of_range_are_named(name, value):
    fields = OuterFields(1, 2, 48.0, 8.0, sealed_inner())._replace(**{name: value})
    with pytest.raises(FieldRangeError) as info:
        seal_outer(outer_key(), Position(100, 9, 0), fields)
    field = "voltage" if name == "voltage_v" else "current_limit"
    assert info.value.field == field
    assert "0..655.35" in str(info.value) and info.value.router_id == ROUTER.name


@pytest.mark.parametrize(
    ("name", "value", "field"),
    [
        ("energy_j", 429_496.73, "energy"),
        ("energy_j", -1.0, "energy"),
        ("price", 4295.0, "price"),
        ("voltage_v", 1000.0, "voltage"),
        ("transfer", 65_536, "transfer"),
        ("packet", -1, "packet"),
    ],
)
def test_inner_values_out_of_range_are_named(name, value, field):
    with pytest.raises(FieldRangeError) as info:
        seal_inner(inner_key(), 100, 9, 1, INNER._replace(**{name: value}))
    assert info.value.field == field


@pytest.mark.parametrize(
    ("at", "field"),
    [
        (Position(2**32, 0, 0), "frame"),
        (Position(1, 65_536, 0), "slot"),
        (Position(1, 0, 256), "index"),
        (Position(-1, 0, 0), "frame"),
    ],
)
def test_positions_out_of_range_are_named(at, field):
    fields = OuterFields(1, 2, 48.0, 8.0, sealed_inner())
    with pytest.raises(FieldRangeError) as info:
        seal_outer(outer_key(), at, fields)
    assert info.value.field == field


def test_port_out_of_range_is_named():
    with pytest.raises(FieldRangeError) as info:
        seal_outer(outer_key(), Position(1, 0, 0), OuterFields(256, 2, 48.0, 8.0, sealed_inner()))
    assert info.value.field == "in_port"


def test_every_single_bit_flip_is_refused():
    blob = sealed_outer()
    ring, at = router_ring(epochs=(EPOCH, EPOCH + 1)), Position(100, 9, 0)
    open_outer(ring, blob, at)  # the untouched entry opens
    kinds: dict[str, set[type]] = {}
    for bit in range(len(blob) * 8):
        flipped = bytearray(blob)
        flipped[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(HeaderRefusal) as info:
            open_outer(ring, bytes(flipped), at)
        field = _field_at(bit // 8)
        kinds.setdefault(field, set()).add(type(info.value))
    # each part of the entry fails the way the specification says
    assert kinds["version"] == {HeaderFormatError}
    assert kinds["router"] == {MisplacedEntryError}
    assert kinds["epoch"] == {KeyEpochError, HeaderAuthError}  # EPOCH+1 is held: tag fails
    for part in ("frame_lo", "slot", "index", "ciphertext+tag"):
        assert kinds[part] == {HeaderAuthError}, part


def _field_at(offset: int) -> str:
    for at, f in L.OUTER_HEADER.offsets():
        if at <= offset < at + f.size:
            return f.name
    return "ciphertext+tag"


def test_wrong_router_key_is_an_auth_error():
    blob = sealed_outer()
    stranger = Identities()  # the same router id with another identity
    ring = stranger.ring("outer", ROUTER, [EPOCH], ROUTER.name)
    with pytest.raises(HeaderAuthError) as info:
        open_outer(ring, blob, Position(100, 9, 0))
    assert info.value.layer == "outer"
    assert (info.value.router_id, info.value.frame) == ("R2", 100)


def test_wrong_sink_key_is_an_inner_auth_error():
    stranger = Identities()
    ring = stranger.ring("inner", SINK, [EPOCH], "R1")
    with pytest.raises(HeaderAuthError) as info:
        open_inner(ring, sealed_inner(), epoch=EPOCH, frame=100, slot=9)
    assert info.value.layer == "inner"
    assert (info.value.router_id, info.value.frame) == ("R1", 100)


@pytest.mark.parametrize(("frame", "slot"), [(101, 9), (100, 10)])
def test_inner_bound_to_frame_and_delivery_slot(frame, slot):
    with pytest.raises(HeaderAuthError):
        open_inner(meter_ring(), sealed_inner(), epoch=EPOCH, frame=frame, slot=slot)


def test_inner_bound_to_its_source():
    blob = bytearray(sealed_inner(source=1))
    blob[1] = 2  # claim another source terminal
    with pytest.raises(HeaderAuthError):
        open_inner(meter_ring(), bytes(blob), epoch=EPOCH, frame=100, slot=9)


def test_wrong_epoch_is_a_key_epoch_error():
    blob = sealed_outer()
    with pytest.raises(KeyEpochError) as info:
        open_outer(router_ring(epochs=(EPOCH + 1,)), blob, Position(100, 9, 0))
    assert "epoch 2" in str(info.value) and info.value.router_id == "R2"
    with pytest.raises(KeyEpochError):
        open_inner(meter_ring(epochs=(1,)), sealed_inner(), epoch=EPOCH, frame=100, slot=9)


@pytest.mark.parametrize("moved_to", [Position(100, 10, 0), Position(100, 9, 1)])
def test_entry_moved_to_another_slot_or_index(moved_to):
    with pytest.raises(MisplacedEntryError) as info:
        open_outer(router_ring(), sealed_outer(), moved_to)
    assert info.value.verified  # authentic: it really was sealed for slot 9 index 0
    assert "slot 9 index 0" in str(info.value)


def test_entry_moved_to_another_router():
    blob = sealed_outer(party=ROUTER)
    with pytest.raises(MisplacedEntryError) as info:
        open_outer(router_ring(OTHER_ROUTER), blob, Position(100, 9, 0))
    assert not info.value.verified and info.value.router_id == "R3"


def test_router_field_rewritten_to_the_receiver_fails_authentication():
    blob = bytearray(sealed_outer(party=ROUTER))
    blob[3:5] = OTHER_ROUTER.index.to_bytes(2, "big")
    with pytest.raises(HeaderAuthError):
        open_outer(router_ring(OTHER_ROUTER), bytes(blob), Position(100, 9, 0))


@pytest.mark.parametrize("later", [1, 17, 255])
def test_entry_of_an_earlier_frame_is_a_replay(later):
    blob = sealed_outer(Position(100, 9, 0))
    with pytest.raises(ReplayError) as info:
        open_outer(router_ring(), blob, Position(100 + later, 9, 0))
    assert "frame 100" in str(info.value) and info.value.frame == 100 + later


def test_entry_256_frames_old_no_longer_authenticates():
    blob = sealed_outer(Position(100, 9, 0))
    with pytest.raises(HeaderAuthError):  # frame_lo points at frame 356 itself
        open_outer(router_ring(), blob, Position(356, 9, 0))


def test_entry_claiming_a_frame_before_zero():
    blob = sealed_outer(Position(200, 9, 0))
    with pytest.raises(HeaderAuthError):
        open_outer(router_ring(), blob, Position(3, 9, 0))


@pytest.mark.parametrize("size", [0, 1, 9, 31, 33, 62, 64, 200])
def test_wrong_length_is_a_format_error(size):
    with pytest.raises(HeaderFormatError):
        open_outer(router_ring(), bytes(size), Position(100, 9, 0))
    with pytest.raises(HeaderFormatError):
        open_inner(meter_ring(), bytes(size), epoch=EPOCH, frame=1, slot=1)


FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
# positions come from the receiver's own table; out of the wire's range they are still
# refused with a typed error, never a struct.error
@given(blob=st.binary(max_size=130), frame=st.integers(-9, 2**40), slot=st.integers(-9, 2**20))
def test_fuzz_random_bytes_into_open_outer(blob, frame, slot):
    with pytest.raises(HeaderRefusal):
        open_outer(router_ring(epochs=(1, EPOCH)), blob, Position(frame, slot, 0))


@FUZZ
@given(body=st.binary(min_size=OUTER_ENTRY_BYTES - 5, max_size=OUTER_ENTRY_BYTES - 5))
def test_fuzz_plausible_headers_into_open_outer(body):
    # a valid version, this router, a held epoch: the bytes reach the AEAD
    blob = bytes([L.LAYOUT_VERSION]) + EPOCH.to_bytes(2, "big") + ROUTER.index.to_bytes(2, "big")
    with pytest.raises(HeaderRefusal):
        open_outer(router_ring(), blob + body, Position(100, 9, 0))


@FUZZ
@given(blob=st.binary(max_size=70), frame=st.integers(-9, 2**40), slot=st.integers(-9, 2**20))
def test_fuzz_random_bytes_into_open_inner(blob, frame, slot):
    with pytest.raises(HeaderRefusal):
        open_inner(meter_ring(), blob, epoch=EPOCH, frame=frame, slot=slot)


@pytest.mark.parametrize(("frame", "slot"), [(2**32, 9), (100, 2**16), (-1, 9)])
def test_a_genuine_entry_at_an_impossible_position_is_a_format_error(frame, slot):
    with pytest.raises(HeaderFormatError):
        open_inner(meter_ring(), sealed_inner(), epoch=EPOCH, frame=frame, slot=slot)
    blob = bytes([L.LAYOUT_VERSION]) + EPOCH.to_bytes(2, "big") + ROUTER.index.to_bytes(2, "big")
    with pytest.raises(HeaderFormatError):
        open_outer(router_ring(), blob + bytes(OUTER_ENTRY_BYTES - 5), Position(frame, slot, 0))
