"""Garbage, truncated and oversized frames on a real pseudo-terminal and a real TCP
socket: the twin answers with protocol errors or resynchronises, and keeps serving."""

from __future__ import annotations

import asyncio
import os
import struct

import pytest
import serial

from bench import bundled_path
from firmware_bridge import framed
from firmware_bridge.driver import parse_address
from sim_hw import modbus_codec as mb
from sim_hw.twin import Twin
from tests.twin_support import drivers

IDLE_S = 0.05  # longer than the twin's 20 ms quiet-line flush


async def _exchange(port: serial.Serial, data: bytes, wait_s: float = IDLE_S) -> bytes:
    port.write(data)
    await asyncio.sleep(wait_s)
    return port.read(port.in_waiting or 1)


async def _still_serving(twin: Twin) -> dict[str, int]:
    async with drivers(twin) as ds:
        counters = {rid: (await d.read_status()).counters["bad_requests"] for rid, d in ds.items()}
    return counters


@pytest.mark.timeout(30)
async def test_framed_line_resyncs_after_garbage_truncation_and_oversize(twin_keys):
    async with Twin(bundled_path(), twin_keys.path, transport="serial") as twin:
        port = serial.Serial(twin.device_path, 115200, timeout=0)
        try:
            read_id = framed.encode(1, 1, framed.OP_READ, framed.read_request(0, 9))
            assert await _exchange(port, os.urandom(300)) == b""  # noise: no reply
            assert await _exchange(port, read_id[:9]) == b""  # truncated, then quiet
            oversized = framed.encode(1, 2, framed.OP_READ, framed.read_request(0, 9))
            oversized = oversized[:5] + struct.pack(">H", 60000) + oversized[7:]
            reply = await _exchange(port, oversized + read_id)  # impossible length, then a good one
            assert framed.decode(reply).frame.payload[:4] == b"PPR1"
            too_many = framed.encode(1, 3, framed.OP_READ, framed.read_request(0, 3000))
            err = framed.decode(await _exchange(port, too_many)).frame
            assert err.is_error and err.payload == bytes([3])  # illegal value
            unknown = framed.encode(1, 4, 0x2B, b"")
            err = framed.decode(await _exchange(port, unknown)).frame
            assert (err.op, err.payload) == (0x2B | 0x80, bytes([1]))  # illegal function
        finally:
            port.close()
        bad = await _still_serving(twin)
    assert all(n >= 3 for n in bad.values())  # every router on the line saw the garbage


@pytest.mark.timeout(30)
async def test_rtu_line_resyncs_and_answers_protocol_errors(twin_keys):
    async with Twin(bundled_path(), twin_keys.path, transport="rtu") as twin:
        port = serial.Serial(twin.device_path, 115200, timeout=0)
        try:
            read = mb.rtu_frame(2, bytes.fromhex("0300000009"))
            assert await _exchange(port, b"\x02\x10\xff" + os.urandom(40)) == b""
            reply = await _exchange(port, read[:5])  # truncated: dropped when quiet
            assert reply == b""
            reply = await _exchange(port, b"\x00\x55" + read)  # garbage glued to a request
            assert reply[:3] == bytes([2, 3, 18]) and reply[3:7] == b"PPR1"
            assert mb.crc16(reply[:-2]) == int.from_bytes(reply[-2:], "little")
            too_many = mb.rtu_frame(2, bytes.fromhex("030000007e"))  # 126 registers
            assert (await _exchange(port, too_many))[:3] == bytes([2, 0x83, 3])
            unmapped = mb.rtu_frame(2, bytes.fromhex("03e0000001"))
            assert (await _exchange(port, unmapped))[:3] == bytes([2, 0x83, 2])
            write_ro = mb.rtu_frame(2, bytes.fromhex("0600100001"))  # state is read only
            assert (await _exchange(port, write_ro))[:3] == bytes([2, 0x86, 2])
        finally:
            port.close()
        bad = await _still_serving(twin)
    assert bad["R2"] >= 2


@pytest.mark.timeout(30)
async def test_tcp_drops_a_non_modbus_connection_and_keeps_listening(twin_keys):
    async with Twin(bundled_path(), twin_keys.path, transport="tcp") as twin:
        a = parse_address(twin.addresses["R1"])
        reader, writer = await asyncio.open_connection(a.host, a.port)
        writer.write(b"GET / HTTP/1.1\r\nHost: twin\r\n\r\n")
        assert await asyncio.wait_for(reader.read(100), 2) == b""  # closed on us
        writer.close()
        await writer.wait_closed()
        reader, writer = await asyncio.open_connection(a.host, a.port)
        too_many = bytes([16]) + struct.pack(">HHB", 0x1000, 124, 240) + b"\0" * 240
        writer.write(mb.mbap_frame(5, 1, too_many))
        reply = await asyncio.wait_for(reader.readexactly(9), 2)
        assert reply == mb.mbap_frame(5, 1, bytes([0x90, 3]))  # illegal value, still connected
        oversized = bytes([16]) + struct.pack(">HHB", 0x1000, 124, 248) + b"\0" * 248
        writer.write(mb.mbap_frame(6, 1, oversized))  # longer than a Modbus TCP ADU
        assert await asyncio.wait_for(reader.read(100), 2) == b""
        writer.close()
        await writer.wait_closed()
        reader, writer = await asyncio.open_connection(a.host, a.port)
        writer.write(mb.mbap_frame(6, 1, bytes.fromhex("0300"))[:-1])  # truncated, then gone
        writer.close()
        await writer.wait_closed()
        bad = await _still_serving(twin)
    assert bad["R1"] == 2
