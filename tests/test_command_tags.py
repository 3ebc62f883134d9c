"""Command tags (docs/headers.md, "Commands"): the key and tag worked out independently
(RFC 5869 HKDF and RFC 2104 HMAC from hashlib), the router's key agreeing with the
controller's, and every flipped bit of a message refused."""

from __future__ import annotations

import hashlib
import hmac

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from firmware_bridge.headers import command_key
from firmware_bridge.headers.vectors import CONTROLLER_PRIVATE, EPOCH, ROUTER, ROUTER_PRIVATE


def hkdf_sha256(salt: bytes, ikm: bytes, info: bytes) -> bytes:
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    return hmac.new(prk, info + b"\x01", hashlib.sha256).digest()  # 32 bytes: one block


def test_the_command_key_and_tag_are_hkdf_and_truncated_hmac():
    ctl = X25519PrivateKey.from_private_bytes(CONTROLLER_PRIVATE)
    rtr = X25519PrivateKey.from_private_bytes(ROUTER_PRIVATE)
    ours = command_key(ctl, rtr.public_key(), ROUTER, EPOCH, controller=True)
    theirs = command_key(rtr, ctl.public_key(), ROUTER, EPOCH, controller=False)
    salt = ctl.public_key().public_bytes_raw() + rtr.public_key().public_bytes_raw()
    info = f"ppr-headers/1|command|controller>router:{ROUTER.index}|epoch:{EPOCH}".encode()
    secret = hkdf_sha256(salt, ctl.exchange(rtr.public_key()), info)
    assert ours.secret == theirs.secret == secret
    body = bytes(range(28))
    # version 1, kind 4 (arm), router wire id 2, epoch 3: the 6-byte prefix
    message = bytes([1, 4, 0, ROUTER.index, 0, EPOCH]) + body
    assert ours.message(4, body) == message
    tag = hmac.new(secret, message, hashlib.sha256).digest()[:16]
    assert ours.tag(4, body) == tag and theirs.verify(4, body, tag)


def test_any_flipped_bit_or_other_kind_is_refused():
    ctl = X25519PrivateKey.from_private_bytes(CONTROLLER_PRIVATE)
    rtr = X25519PrivateKey.from_private_bytes(ROUTER_PRIVATE)
    key = command_key(rtr, ctl.public_key(), ROUTER, EPOCH, controller=False)
    body = bytes(range(20))
    tag = key.tag(3, body)
    for i in range(len(body) * 8):
        flipped = bytearray(body)
        flipped[i // 8] ^= 1 << (i % 8)
        assert not key.verify(3, bytes(flipped), tag)
    for i in range(len(tag) * 8):
        bad = bytearray(tag)
        bad[i // 8] ^= 1 << (i % 8)
        assert not key.verify(3, body, bytes(bad))
    assert not any(key.verify(kind, body, tag) for kind in range(256) if kind != 3)
