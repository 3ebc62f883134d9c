"""Errors of header sealing and opening, and of the key store.

One rooted tree. Every error carries ``router_id`` (the router that refused the entry, or
whose entry could not be sealed; for the inner layer, the router hosting the sink's
meter) and ``frame``; either is ``None`` where it does not apply (the key store).

Raised, never returned: every ``open_*`` function and ``RouterHeaderState.open_entry``
raise a ``HeaderRefusal``. ``RouterHeaderState.commit`` turns per-entry refusals into
values (``TableResult.refused``) because a router counts and skips a bad entry without
dropping the rest of its table; only a replayed frame number refuses the whole table,
raised as ``ReplayError``.
"""

from __future__ import annotations

from typing import Literal

Layer = Literal["outer", "inner", "command"]


class HeaderError(Exception):
    """Root of every error of ``firmware_bridge.headers`` and ``firmware_bridge.keystore``."""

    def __init__(self, message: str, *, router_id: str | None = None, frame: int | None = None):
        self.message = message
        self.router_id = router_id
        self.frame = frame
        where = []
        if router_id is not None:
            where.append(f"router {router_id}")
        if frame is not None:
            where.append(f"frame {frame}")
        super().__init__(f"{', '.join(where)}: {message}" if where else message)


# --- refusals: the receiving router (or meter) will not act on an entry ----------------


class HeaderRefusal(HeaderError):
    """An entry was refused by its receiver. Subclasses say why; the register map counts
    them apart (rejected headers, replays)."""


class HeaderFormatError(HeaderRefusal):
    """The bytes are not an entry of a known layout: wrong length or unknown version."""


class HeaderAuthError(HeaderRefusal):
    """The AEAD tag does not verify: forged, corrupted, or sealed for someone else's key."""

    def __init__(
        self, message: str, *, layer: Layer, router_id: str | None = None, frame: int | None = None
    ):
        self.layer = layer
        super().__init__(message, router_id=router_id, frame=frame)


class ReplayError(HeaderRefusal):
    """A frame number not above the last committed one, or an authentic entry of an
    earlier frame written into this frame's table."""


class KeyEpochError(HeaderRefusal):
    """An entry names a key epoch the receiver holds no key for, or one whose grace
    window after a rotation has ended."""


class MisplacedEntryError(HeaderRefusal):
    """An entry sits where it was not sealed for: another slot or table index (checked
    after authentication, so the entry is genuine), or another router (the clear router
    field; ``verified`` is False because no key here can authenticate it)."""

    def __init__(
        self,
        message: str,
        *,
        verified: bool,
        router_id: str | None = None,
        frame: int | None = None,
    ):
        self.verified = verified
        super().__init__(message, router_id=router_id, frame=frame)


# --- the controller cannot seal what it was given -------------------------------------


class SealError(HeaderError):
    """The controller was asked to seal something the wire format cannot carry."""


class FieldRangeError(SealError):
    """A value falls outside its field's fixed-point range."""

    def __init__(
        self,
        field: str,
        value: float,
        allowed: str,
        *,
        router_id: str | None = None,
        frame: int | None = None,
    ):
        self.field = field
        self.value = value
        super().__init__(
            f"{field} = {value!r} is outside {allowed}", router_id=router_id, frame=frame
        )


class NonceConflictError(SealError):
    """Two entries of one frame would share a key and a nonce (a plan that puts two
    packets on one sink, or one table position, in the same slot)."""


class UnknownPartyError(SealError):
    """A router or terminal of the plan has no key (not in the key store)."""


# --- the key store on disk -------------------------------------------------------------


class KeyStoreError(HeaderError):
    """The key store is missing, malformed, or cannot be written."""


class KeyPermissionError(KeyStoreError):
    """A private key file is readable by group or others."""
