"""Modbus TCP and Modbus RTU backends (pymodbus 3.16 clients).

One pymodbus client per link (TCP endpoint or serial port), shared by every router
behind it and used under the link's lock. pymodbus's own retries are off: the base
class retries with its named backoff, and checks every reply against its request
(RTU has no transaction id, so a late reply must not pass for the next one).
"""

from __future__ import annotations

import asyncio
from abc import abstractmethod
from collections.abc import Sequence
from typing import Any

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.client.base import ModbusBaseClient
from pymodbus.exceptions import ConnectionException, ModbusException, ModbusIOException

from firmware_bridge.driver.base import NoReply, RoundTrip, RouterDriver, Transient
from firmware_bridge.driver.links import LinkPool, Shared
from firmware_bridge.errors import RouterRefused, RouterUnavailable

_POOL: LinkPool[ModbusBaseClient] = LinkPool()
# exceptions 10 (gateway path unavailable) and 11 (target failed to respond): the
# gateway lost this request on its RTU side, as a timeout would have
GATEWAY_RETRY = (10, 11)


class _ModbusDriver(RouterDriver):
    _shared: Shared[ModbusBaseClient] | None = None

    @property
    def wire_s(self) -> float:
        """The longest transaction's time on the wire (0: not a serial line)."""
        return 0.0

    @abstractmethod
    def _client(self) -> ModbusBaseClient:
        """A pymodbus client for this address (TCP or RTU), not yet connected."""

    async def _connect(self) -> None:
        async def opener() -> ModbusBaseClient:
            client = self._client()
            if not await client.connect():
                client.close()
                raise RouterUnavailable("cannot connect", **self.where())
            return client

        self._shared = await _POOL.acquire(self.address.link, opener)

    async def _disconnect(self) -> None:
        if self._shared is None:
            return
        self._shared = None
        await _POOL.release(self.address.link)

    async def _call(self, method: str, *args: Any, trip: RoundTrip | None = None, **kw: Any) -> Any:
        assert self._shared is not None, "driver is not open"
        shared = self._shared
        async with shared.lock.hold():
            # pymodbus closes a TCP link after a few requests without a reply and, with
            # reconnect_delay=0, never opens it again by itself
            if not shared.link.connected and not await shared.link.connect():
                raise NoReply("link closed and cannot reconnect")
            if trip is not None:
                trip.sending()
            try:
                # pymodbus times out at self.timeout (+ wire time); this is the safety net
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow a cancel
                async with asyncio.timeout(2 * (self.timeout + self.wire_s) + 0.1):
                    reply = await getattr(shared.link, method)(
                        *args, device_id=self.address.unit, **kw
                    )
            except ModbusIOException as exc:
                # pymodbus reports its timeout and a mismatched reply with one class
                if "No response" in str(exc):
                    raise NoReply(str(exc)) from exc
                raise Transient(str(exc)) from exc
            except ConnectionException as exc:
                raise NoReply(str(exc)) from exc
            except ModbusException as exc:
                raise Transient(f"bad reply: {exc}") from exc
            if trip is not None:
                trip.received()
        if reply.isError():
            code = getattr(reply, "exception_code", 0)
            if code in GATEWAY_RETRY:
                raise Transient(f"gateway exception {code}")
            name = next((k for k, v in self.map.exceptions.items() if v == code), "unknown")
            raise RouterRefused(f"exception {code} ({name})", code=code, **self.where(method))
        return reply

    async def _read(self, addr: int, count: int, trip: RoundTrip | None = None) -> list[int]:
        reply = await self._call("read_holding_registers", addr, count=count, trip=trip)
        if len(reply.registers) != count:
            raise Transient(f"reply has {len(reply.registers)} registers, asked {count}")
        return list(reply.registers)

    async def _write(self, addr: int, values: Sequence[int]) -> None:
        reply = await self._call("write_registers", addr, list(values))
        if (reply.address, reply.count) != (addr, len(values)):
            raise Transient(
                f"reply echoes {reply.address}+{reply.count}, sent {addr}+{len(values)}"
            )

    async def _write_coil(self, addr: int, value: bool) -> None:
        reply = await self._call("write_coil", addr, value)
        if reply.address != addr:
            raise Transient(f"reply echoes coil {reply.address}, sent {addr}")


class ModbusTcpDriver(_ModbusDriver):
    scheme = "modbus-tcp"

    def _client(self) -> ModbusBaseClient:
        return AsyncModbusTcpClient(
            self.address.host,
            port=self.address.port,
            timeout=self.timeout,
            retries=0,
            reconnect_delay=0,  # reconnecting is the caller's decision
        )


class ModbusRtuDriver(_ModbusDriver):
    scheme = "modbus-rtu"

    @property
    def wire_s(self) -> float:
        """Two 256-byte RTU frames and their silences: 45 ms at 115200, 0.5 s at 9600."""
        return (2 * 256 + 7) * 10 / self.address.baud

    def _client(self) -> ModbusBaseClient:
        # a reply cannot come before the request and the reply crossed the line
        return AsyncModbusSerialClient(
            self.address.path,
            baudrate=self.address.baud,
            timeout=self.timeout + self.wire_s,
            retries=0,
            reconnect_delay=0,
        )
