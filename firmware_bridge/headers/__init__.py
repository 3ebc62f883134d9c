"""Double-sealed slot-table headers: the authenticated gate commands of the wire contract.

Pure functions and small state, no I/O. The outer layer is sealed per router (which
gates, when, at what voltage and current limit), the inner layer end to end for the sink
terminal's meter (which trade the energy belongs to). ``docs/headers.md`` is the byte-level
specification firmware implements; ``firmware_bridge.keystore`` keeps the identities.
"""

from firmware_bridge.headers.commands import CommandKey, command_key
from firmware_bridge.headers.errors import (
    FieldRangeError,
    HeaderAuthError,
    HeaderError,
    HeaderFormatError,
    HeaderRefusal,
    KeyEpochError,
    KeyPermissionError,
    KeyStoreError,
    MisplacedEntryError,
    NonceConflictError,
    ReplayError,
    SealError,
    UnknownPartyError,
)
from firmware_bridge.headers.frame import SealedFrame, SealingKeys, TableEntry, seal_frame
from firmware_bridge.headers.keys import KeyRing, LayerKey, Party, layer_key
from firmware_bridge.headers.layout import (
    INNER_ENTRY_BYTES,
    LAYOUT_VERSION,
    OUTER_ENTRY_BYTES,
    STORE_PORT,
)
from firmware_bridge.headers.router_state import (
    DEFAULT_GRACE_FRAMES,
    RouterHeaderState,
    TableResult,
)
from firmware_bridge.headers.seal import (
    InnerEntry,
    InnerFields,
    OuterEntry,
    OuterFields,
    Position,
    open_inner,
    open_outer,
    seal_inner,
    seal_outer,
)

__all__ = [
    "DEFAULT_GRACE_FRAMES",
    "INNER_ENTRY_BYTES",
    "LAYOUT_VERSION",
    "OUTER_ENTRY_BYTES",
    "STORE_PORT",
    "CommandKey",
    "FieldRangeError",
    "HeaderAuthError",
    "HeaderError",
    "HeaderFormatError",
    "HeaderRefusal",
    "InnerEntry",
    "InnerFields",
    "KeyEpochError",
    "KeyPermissionError",
    "KeyRing",
    "KeyStoreError",
    "LayerKey",
    "MisplacedEntryError",
    "NonceConflictError",
    "OuterEntry",
    "OuterFields",
    "Party",
    "Position",
    "ReplayError",
    "RouterHeaderState",
    "SealError",
    "SealedFrame",
    "SealingKeys",
    "TableEntry",
    "TableResult",
    "UnknownPartyError",
    "command_key",
    "layer_key",
    "open_inner",
    "open_outer",
    "seal_frame",
    "seal_inner",
    "seal_outer",
]
