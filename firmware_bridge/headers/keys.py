"""Key agreement and derivation for the two header layers.

Every party (the controller, each router, each terminal's meter) holds an X25519
identity. The controller and a party agree on a secret, and HKDF-SHA256 turns it into
one AES-256-GCM-SIV key per (layer, party, epoch)::

    secret = X25519(controller_private, party_public) = X25519(party_private, controller_public)
    key    = HKDF-SHA256(ikm=secret, salt=controller_public || party_public,
                         info="ppr-headers/1|<layer>|controller><kind>:<wire id>|epoch:<e>",
                         length=32)

The salt binds the key to both public keys; ``info`` separates layers, parties, the
direction (only controller-to-party keys exist so far) and epochs, so no two of them
ever share a key even if a device identity is reused across epochs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal, Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from firmware_bridge.headers.errors import KeyStoreError, Layer
from firmware_bridge.headers.layout import KEY_BYTES, LAYOUT_VERSION, MAX_EPOCH

PartyKind = Literal["controller", "router", "terminal"]
LABEL = f"ppr-headers/{LAYOUT_VERSION}"


class Aead(Protocol):
    """What sealing needs of an AEAD (AESGCMSIV here; the benchmark swaps in others)."""

    def encrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...

    def decrypt(self, nonce: bytes, data: bytes, associated_data: bytes | None) -> bytes: ...


@dataclass(frozen=True, slots=True)
class Party:
    kind: PartyKind
    name: str  # the scenario id
    index: int  # the wire id (0 for the controller)

    def __str__(self) -> str:
        return f"{self.kind} {self.name}"


@dataclass(frozen=True, eq=False)
class LayerKey:
    """One derived key: for ``party``, in ``layer``, during ``epoch``."""

    layer: Layer
    party: Party
    epoch: int
    router_id: str  # who opens it: the router (outer) or the router hosting the meter (inner)
    aead: Aead = field(repr=False)


@dataclass(frozen=True)
class KeyRing:
    """The keys one receiver holds for one layer, by epoch (``open_*`` picks by epoch)."""

    party: Party
    router_id: str
    keys: Mapping[int, LayerKey]

    def only(self, epochs: set[int]) -> KeyRing:
        return KeyRing(
            self.party, self.router_id, {e: k for e, k in self.keys.items() if e in epochs}
        )


def hkdf_info(layer: Layer, party: Party, epoch: int) -> bytes:
    return f"{LABEL}|{layer}|controller>{party.kind}:{party.index}|epoch:{epoch}".encode("ascii")


def derive_key_bytes(
    layer: Layer,
    secret: bytes,
    controller_public: bytes,
    party_public: bytes,
    party: Party,
    epoch: int,
) -> bytes:
    if not 1 <= epoch <= MAX_EPOCH:
        raise KeyStoreError(f"key epoch {epoch} is outside 1..{MAX_EPOCH}")
    hkdf = HKDF(
        algorithm=hashes.SHA256(),
        length=KEY_BYTES,
        salt=controller_public + party_public,
        info=hkdf_info(layer, party, epoch),
    )
    return hkdf.derive(secret)


def shared_secret(private: X25519PrivateKey, public: X25519PublicKey, party: Party) -> bytes:
    try:
        return private.exchange(public)
    except ValueError as exc:  # a low-order public key gives an all-zero secret
        raise KeyStoreError(f"key agreement with {party} failed: {exc}") from exc


def layer_key(
    layer: Layer,
    own_private: X25519PrivateKey,
    peer_public: X25519PublicKey,
    party: Party,
    epoch: int,
    router_id: str,
    *,
    controller: bool,
) -> LayerKey:
    """The key shared by the controller and ``party``, computed on either side:
    ``controller=True`` with the controller's private key and the party's public key,
    ``controller=False`` with the party's private key and the controller's public key."""
    secret = shared_secret(own_private, peer_public, party)
    own, peer = own_private.public_key().public_bytes_raw(), peer_public.public_bytes_raw()
    controller_public, party_public = (own, peer) if controller else (peer, own)
    raw = derive_key_bytes(layer, secret, controller_public, party_public, party, epoch)
    return LayerKey(layer, party, epoch, router_id, AESGCMSIV(raw))
