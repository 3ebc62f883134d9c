"""docs/headers.md: its generated parts match the code, and its test vectors open."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from firmware_bridge.docblocks import block
from firmware_bridge.headers import KeyRing, Party, Position, layer_key, open_inner, open_outer
from firmware_bridge.headers.vectors import GENERATED

DOC = Path(__file__).parents[1] / "docs" / "headers.md"
REGENERATE = "run: python -m firmware_bridge.headers.vectors docs/headers.md"


@pytest.mark.parametrize("name", sorted(GENERATED))
def test_generated_block_matches_the_code(name):
    text = block(DOC.read_text(encoding="utf-8"), name)
    assert text is not None, f"docs/headers.md lacks the '{name}' block markers"
    assert text == GENERATED[name](), f"docs/headers.md '{name}' is stale; {REGENERATE}"


def _doc_vectors() -> dict[str, str]:
    text = block(DOC.read_text(encoding="utf-8"), "vectors")
    assert text is not None
    out = {}
    for line in text.strip().strip("`").strip().splitlines():
        name, _, value = line.partition("  ")
        out[name.strip()] = value.strip()
    return out


def test_doc_vectors_open_with_keys_derived_from_the_doc():
    """A firmware port's view: only the hex printed in the document, the router's and
    the meter's side of the key agreement."""
    v = _doc_vectors()
    ctl_pub = X25519PrivateKey.from_private_bytes(
        bytes.fromhex(v["controller private"])
    ).public_key()
    assert ctl_pub.public_bytes_raw().hex() == v["controller public"]
    router = X25519PrivateKey.from_private_bytes(bytes.fromhex(v["router R3 (wire id 2) private"]))
    sink = X25519PrivateKey.from_private_bytes(bytes.fromhex(v["sink MEC3 (wire id 5) private"]))
    r_party, s_party = Party("router", "R3", 2), Party("terminal", "MEC3", 5)
    r_key = layer_key("outer", router, ctl_pub, r_party, 3, "R3", controller=False)
    s_key = layer_key("inner", sink, ctl_pub, s_party, 3, "R3", controller=False)
    outer = bytes.fromhex(v["outer entry (63 bytes)"])
    entry = open_outer(KeyRing(r_party, "R3", {3: r_key}), outer, Position(0x01020304, 17, 1))
    assert (entry.in_port, entry.out_port, entry.voltage_v, entry.current_a) == (0, 2, 48.0, 8.0)
    assert entry.inner.hex() == v["inner entry (32 bytes)"]
    inner = open_inner(
        KeyRing(s_party, "R3", {3: s_key}), entry.inner, epoch=3, frame=0x01020304, slot=17
    )
    assert (inner.source, inner.fields.transfer, inner.fields.packet) == (0, 4, 9)
    assert inner.fields.price == pytest.approx(0.25)
    # the plaintext printed in the document is what the outer layer carries
    assert v["outer plaintext"].endswith(v["inner entry (32 bytes)"])
    assert outer[:9].hex() == "010003000204001101"
