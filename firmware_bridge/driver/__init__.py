"""Router drivers: one abstract interface, backends chosen by the address scheme.

    creds = Credentials(store.command_keys()["R1"], new_session())
    async with open_driver("modbus-tcp://127.0.0.1:5021?unit=1", "R1", credentials=creds) as r:
        crc = await r.upload_bank(frame, entries)
        await r.commit(frame, crc)
        await r.arm(frame, start_us)

Backends are imported when first used, so the controller does not load pymodbus or
pyserial for a transport it does not use.
"""

from __future__ import annotations

import importlib

from firmware_bridge.driver.address import SCHEMES, RouterAddress, parse_address
from firmware_bridge.driver.base import (
    BACKOFF_BASE_S,
    BACKOFF_MAX_S,
    DEFAULT_TIMEOUT_S,
    MAX_ATTEMPTS,
    Attribution,
    ClockSample,
    CommitResult,
    Identity,
    Meters,
    PortMeter,
    RouterDriver,
    RouterStatus,
    bank_crc,
)
from firmware_bridge.driver.commands import Credentials, new_session

# scheme -> (module, class): the one place that maps addresses to backends
BACKENDS: dict[str, tuple[str, str]] = {
    "modbus-tcp": ("firmware_bridge.driver.modbus", "ModbusTcpDriver"),
    "modbus-rtu": ("firmware_bridge.driver.modbus", "ModbusRtuDriver"),
    "serial": ("firmware_bridge.driver.framed_serial", "FramedSerialDriver"),
}
assert set(BACKENDS) == set(SCHEMES)


def driver_class(scheme: str) -> type[RouterDriver]:
    module, name = BACKENDS[scheme]
    cls: type[RouterDriver] = getattr(importlib.import_module(module), name)
    return cls


def open_driver(
    address: str | RouterAddress,
    router_id: str | None = None,
    *,
    credentials: Credentials | None = None,
    **options: float,
) -> RouterDriver:
    """A driver for ``address`` (not yet connected: ``async with`` it or ``await open()``).
    Options: ``timeout`` (s), ``attempts``. Without ``credentials`` it reads and e-stops
    only (commands are authenticated)."""
    addr = parse_address(address) if isinstance(address, str) else address
    attempts = int(options.pop("attempts", MAX_ATTEMPTS))
    return driver_class(addr.scheme)(
        addr, router_id, attempts=attempts, credentials=credentials, **options
    )


__all__ = [
    "BACKENDS",
    "BACKOFF_BASE_S",
    "BACKOFF_MAX_S",
    "DEFAULT_TIMEOUT_S",
    "MAX_ATTEMPTS",
    "Attribution",
    "ClockSample",
    "CommitResult",
    "Credentials",
    "Identity",
    "Meters",
    "PortMeter",
    "RouterAddress",
    "RouterDriver",
    "RouterStatus",
    "bank_crc",
    "driver_class",
    "new_session",
    "open_driver",
    "parse_address",
]
