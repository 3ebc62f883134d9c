"""Router addresses: ``scheme://endpoint?key=value``, parsed once at the edge.

    modbus-tcp://127.0.0.1:5021?unit=1
    modbus-rtu:///dev/ttyUSB0?baud=115200&unit=3
    serial:///dev/ttyUSB0?baud=115200&unit=3

``unit`` is the Modbus unit (device) id, 1..247; ``timeout`` (seconds) overrides the
driver's reply timeout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

from firmware_bridge.errors import AddressError

SCHEMES = ("modbus-tcp", "modbus-rtu", "serial")
DEFAULT_BAUD = 115200


@dataclass(frozen=True)
class RouterAddress:
    scheme: str
    host: str = ""  # tcp
    port: int = 0  # tcp
    path: str = ""  # serial device
    params: dict[str, str] = field(default_factory=dict)
    text: str = ""

    def __str__(self) -> str:
        return self.text

    @property
    def unit(self) -> int:
        return self.int("unit", 1)

    @property
    def baud(self) -> int:
        return self.int("baud", DEFAULT_BAUD)

    @property
    def link(self) -> tuple[str, str]:
        """What routers share: one TCP endpoint, or one serial port (any protocol)."""
        if self.scheme == "modbus-tcp":
            return ("tcp", f"{self.host}:{self.port}")
        return ("serial", self.path)

    def int(self, key: str, default: int) -> int:
        try:
            return int(self.params.get(key, default))
        except ValueError:
            raise AddressError(
                f"{key}={self.params[key]!r} is not an integer", address=self.text
            ) from None

    def float(self, key: str, default: float) -> float:
        try:
            return float(self.params.get(key, default))
        except ValueError:
            raise AddressError(
                f"{key}={self.params[key]!r} is not a number", address=self.text
            ) from None


def parse_address(text: str) -> RouterAddress:
    parts = urlsplit(text)
    if parts.scheme not in SCHEMES:
        known = ", ".join(s + "://" for s in SCHEMES)
        raise AddressError(f"unknown scheme '{parts.scheme}' (use one of: {known})", address=text)
    params = dict(parse_qsl(parts.query, keep_blank_values=True))
    unknown = set(params) - {"unit", "baud", "timeout"}
    if unknown:
        raise AddressError(f"unknown parameter(s) {', '.join(sorted(unknown))}", address=text)
    if parts.scheme == "modbus-tcp":
        try:
            port = parts.port
        except ValueError as exc:
            raise AddressError(str(exc), address=text) from None
        if not parts.hostname or port is None:
            raise AddressError("needs host:port, e.g. modbus-tcp://127.0.0.1:502", address=text)
        addr = RouterAddress(parts.scheme, parts.hostname, port, params=params, text=text)
    else:
        if parts.netloc or not parts.path:
            raise AddressError(
                f"needs a device path, e.g. {parts.scheme}:///dev/ttyUSB0", address=text
            )
        addr = RouterAddress(parts.scheme, path=parts.path, params=params, text=text)
    if not 1 <= addr.unit <= 247:
        raise AddressError(f"unit {addr.unit} is outside 1..247", address=text)
    if addr.baud <= 0:
        raise AddressError(f"baud {addr.baud} must be positive", address=text)
    return addr
