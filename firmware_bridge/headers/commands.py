"""Tags on router commands: what lets a router tell its controller's commands from
anyone else's writes on the bus.

Slot-table entries are sealed (``seal``). The commands that act on them (claim the
router, feed its watchdog, commit a bank, arm it, clear a fault, abort, release) are
register blocks that anyone on the bus can write too, so each block ends with a tag::

    key = HKDF-SHA256(ikm = X25519(controller, router), salt = controller_public || router_public,
                      info = "ppr-headers/1|command|controller>router:<wire id>|epoch:<e>")
    tag = HMAC-SHA256(key, prefix || body)[:16]       # HMAC-SHA-256-128

``prefix`` is (layout version, command kind, router wire id, epoch), 6 bytes; ``body``
is the block's registers before the tag, high byte first, exactly as written. The key
is its own HKDF output, never an AEAD key of the headers. Freshness is not the tag's
job: the session and the sequence number inside the body are (the router refuses a
session that is not its owner's and a number not above the last), and a claim quotes
the router's challenge, which never repeats.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from firmware_bridge.headers.keys import Party, derive_key_bytes, shared_secret
from firmware_bridge.headers.layout import COMMAND_PREFIX, LAYOUT_VERSION, TAG_BYTES

COMMAND_TAG_BYTES = TAG_BYTES  # 128 bits of HMAC-SHA-256, as RFC 4868's HMAC-SHA-256-128


@dataclass(frozen=True, eq=False)
class CommandKey:
    """The command key the controller and one router share in one epoch."""

    party: Party  # the router
    epoch: int
    router_id: str
    secret: bytes = field(repr=False)

    def message(self, kind: int, body: bytes) -> bytes:
        prefix = COMMAND_PREFIX.struct.pack(LAYOUT_VERSION, kind, self.party.index, self.epoch)
        return prefix + body

    def tag(self, kind: int, body: bytes) -> bytes:
        mac = hmac.new(self.secret, self.message(kind, body), hashlib.sha256)
        return mac.digest()[:COMMAND_TAG_BYTES]

    def verify(self, kind: int, body: bytes, tag: bytes) -> bool:
        """Constant-time comparison: timing must not tell how much of a forgery was right."""
        return hmac.compare_digest(self.tag(kind, body), tag)


def command_key(
    own_private: X25519PrivateKey,
    peer_public: X25519PublicKey,
    router: Party,
    epoch: int,
    *,
    controller: bool,
) -> CommandKey:
    """The command key, computed on either side (as ``keys.layer_key``)."""
    secret = shared_secret(own_private, peer_public, router)
    own, peer = own_private.public_key().public_bytes_raw(), peer_public.public_bytes_raw()
    controller_public, router_public = (own, peer) if controller else (peer, own)
    raw = derive_key_bytes("command", secret, controller_public, router_public, router, epoch)
    return CommandKey(router, epoch, router.name, raw)
