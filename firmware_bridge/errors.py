"""Errors of the router drivers: one rooted tree, every error says where.

Each carries ``router_id`` (the scenario id the driver was opened for, or ``None``),
``address`` (the driver address, ``modbus-tcp://...``) and ``register`` (the register
map field or block the failing request addressed, or ``None``). Vendor exceptions
(pymodbus, pyserial, OSError) are wrapped with ``from``.

Raised, never returned: a driver call either did what it says or raises. Refusals the
router reports in its registers (a commit refused for a bad CRC, an arm too late) are
raised as ``CommitError`` / ``ArmError`` with the router's status code; an authenticated
command the router would not even carry out as ``CommandRefused`` (``OwnedError`` when
another controller owns the router); per-entry header
refusals inside an accepted commit are not errors: they are counted in the router's
counters (``read_status().counters``) and in ``CommitResult.refused``.
"""

from __future__ import annotations


class BridgeError(Exception):
    """Root of every driver error."""

    def __init__(
        self,
        message: str,
        *,
        router_id: str | None = None,
        address: str | None = None,
        register: str | None = None,
    ):
        self.message = message
        self.router_id = router_id
        self.address = address
        self.register = register
        where = []
        if router_id is not None:
            where.append(f"router {router_id}")
        if address is not None:
            where.append(address)
        if register is not None:
            where.append(f"register {register}")
        super().__init__(f"{' '.join(where)}: {message}" if where else message)


class AddressError(BridgeError):
    """A router address that names no backend or cannot be parsed."""


class RouterUnavailable(BridgeError):
    """The link cannot be opened (no such port, connection refused)."""


class RouterTimeout(BridgeError):
    """No valid reply within the timeout, after every retry."""


class ProtocolError(BridgeError):
    """A reply that does not fit the request (wrong length, wrong echo)."""


class RouterRefused(BridgeError):
    """The router answered with an exception code (illegal address, busy, ...)."""

    def __init__(self, message: str, *, code: int, **where: str | None):
        self.code = code
        super().__init__(message, **where)


class IdentityError(BridgeError):
    """The device is not a router of this register map (magic or map version)."""


class CommitError(BridgeError):
    """The router refused a bank commit; ``status`` is its commit_status name."""

    def __init__(self, message: str, *, status: str, **where: str | None):
        self.status = status
        super().__init__(message, **where)


class ArmError(BridgeError):
    """The router refused to arm a frame; ``status`` is its arm_status name."""

    def __init__(self, message: str, *, status: str, **where: str | None):
        self.status = status
        super().__init__(message, **where)


class CommandRefused(BridgeError):
    """The router refused an authenticated command unexecuted: its tag (the router holds
    other keys), its session (not the owner's) or its sequence number (stale)."""


class OwnedError(CommandRefused):
    """The router is owned by another live controller session; ``session`` is its id."""

    def __init__(self, message: str, *, session: int, **where: str | None):
        self.session = session
        super().__init__(message, **where)
