"""Pure framing: the framed serial protocol and the twin's Modbus RTU / TCP codecs,
fed crafted, split, corrupted, truncated and oversized input."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware_bridge import framed
from sim_hw import modbus_codec as mb

FRAMES = [
    framed.Frame(1, 7, framed.OP_READ, framed.read_request(0x10, 62)),
    framed.Frame(2, 8, framed.OP_WRITE, framed.write_request(0x1000, list(range(2048)))),
    framed.Frame(3, 9, framed.OP_WRITE_COIL, framed.coil_request(1, True)),
]


def test_framed_round_trip_and_layout():
    data = framed.encode(*FRAMES[0])
    assert data[:2] == b"\xa5\x5a" and data[2:7] == bytes([1, 7, 3, 0, 4])
    assert len(data) == framed.OVERHEAD + 4
    assert framed.decode(data) == (len(data), FRAMES[0], 0)


@given(st.binary(max_size=64), st.lists(st.integers(1, 64), min_size=1, max_size=40))
def test_framed_survives_garbage_and_any_split(garbage, cuts):
    stream = garbage + b"".join(framed.encode(*f) for f in FRAMES)
    buf, got, at = framed.FrameBuffer(), [], 0
    for n in cuts * 200:
        if at >= len(stream):
            break
        got += buf.feed(stream[at : at + n])
        at += n
    got += buf.feed(stream[at:])
    # garbage may swallow at most the frames it overlaps; these come after it whole
    assert got[-len(FRAMES) :] == FRAMES or got == FRAMES
    assert buf.pending == 0 or buf.pending < len(garbage) + 2


def test_framed_resyncs_after_a_bad_crc_and_an_impossible_length():
    good = framed.encode(*FRAMES[0])
    bad_crc = bytearray(framed.encode(*FRAMES[2]))
    bad_crc[-1] ^= 1
    oversized = b"\xa5\x5a\x01\x01\x03" + struct.pack(">H", framed.MAX_PAYLOAD + 1) + b"\0" * 10
    buf = framed.FrameBuffer()
    assert buf.feed(bytes(bad_crc) + oversized + good) == [FRAMES[0]]
    assert buf.resyncs >= 1 and buf.garbage_bytes == len(bad_crc) + len(oversized)


def test_framed_partial_frame_is_flushed_when_the_line_goes_quiet():
    buf = framed.FrameBuffer()
    assert buf.feed(framed.encode(*FRAMES[1])[:100]) == []
    assert buf.flush() == 100 and buf.pending == 0
    assert buf.feed(framed.encode(*FRAMES[0])) == [FRAMES[0]]


def test_framed_refuses_to_encode_an_oversized_payload():
    with pytest.raises(ValueError, match="exceeds"):
        framed.encode(1, 1, framed.OP_WRITE, b"\0" * (framed.MAX_PAYLOAD + 1))


def test_crc16_known_vectors():
    assert mb.crc16(b"123456789") == 0x4B37
    # read holding registers, unit 1, address 0, count 10: 01 03 00 00 00 0A C5 CD
    assert mb.rtu_frame(1, bytes.fromhex("030000000a")).hex() == "01030000000ac5cd"


def test_rtu_buffer_finds_frames_by_length_and_crc_after_garbage():
    read = mb.rtu_frame(2, bytes.fromhex("0300100005"))
    write = mb.rtu_frame(3, bytes([16]) + struct.pack(">HHB", 0x60, 2, 4) + b"\x00\x01\x00\x02")
    buf = mb.RtuBuffer()
    got = []
    stream = b"\xff\x00\x13garbage" + read + write
    for i in range(len(stream)):  # byte by byte
        got += buf.feed(stream[i : i + 1])
    got += buf.idle()
    assert got == [mb.RtuRequest(2, read[1:-2]), mb.RtuRequest(3, write[1:-2])]
    assert buf.bad_frames >= 1 and buf.dropped == 10


def test_rtu_buffer_drops_a_truncated_frame_when_the_line_goes_quiet():
    buf = mb.RtuBuffer()
    assert buf.feed(mb.rtu_frame(1, bytes.fromhex("0300000001"))[:5]) == []
    assert buf.idle() == [] and buf.bad_frames == 1 and not buf.buf


def test_mbap_rejects_foreign_protocols_and_impossible_lengths():
    with pytest.raises(mb.MbapError):
        mb.decode_mbap(bytearray(struct.pack(">HHHB", 1, 7, 6, 1) + b"\x03\0\0\0\x01"))
    with pytest.raises(mb.MbapError):
        mb.decode_mbap(bytearray(struct.pack(">HHHB", 1, 0, 4000, 1)))
    frame = bytearray(mb.mbap_frame(9, 1, bytes.fromhex("0300000001")))
    assert mb.decode_mbap(frame[:-1]) == (0, None)  # truncated: wait for the rest
    assert mb.decode_mbap(frame) == (len(frame), mb.MbapRequest(9, 1, bytes.fromhex("0300000001")))


class _Regs:
    def read(self, addr, count, t):
        return list(range(addr, addr + count))

    def write(self, addr, values, t):
        self.written = (addr, values)

    def read_coils(self, addr, count, t):
        return [True] * count

    def write_coil(self, addr, value, t):
        self.coil = (addr, value)


def test_pdu_handling_and_exception_replies():
    dev = _Regs()
    assert mb.handle_pdu(dev, bytes.fromhex("0300050002"), 0, KeyError) == bytes.fromhex(
        "030400050006"
    )
    assert mb.handle_pdu(dev, bytes.fromhex("2b0e0100"), 0, KeyError) == bytes([0xAB, 1])
    too_many = bytes([16]) + struct.pack(">HHB", 0, 124, 248) + b"\0" * 248
    assert mb.handle_pdu(dev, too_many, 0, KeyError) == bytes([0x90, 3])
    assert mb.handle_pdu(dev, bytes.fromhex("0300000000"), 0, KeyError) == bytes([0x83, 3])
    assert mb.handle_pdu(dev, bytes.fromhex("050003ff00"), 0, KeyError) == bytes.fromhex(
        "050003ff00"
    )
    assert dev.coil == (3, True)
