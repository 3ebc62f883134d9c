"""Test vectors and the generated parts of ``docs/headers.md``.

Fixed private keys and fields, run through the real code, every intermediate in hex, so
a firmware port can check itself step by step. The document holds the output between
``<!-- generated: NAME -->`` and ``<!-- end: NAME -->`` markers; a test fails when it
differs. Regenerate with ``python -m firmware_bridge.headers.vectors docs/headers.md``.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from firmware_bridge import docblocks
from firmware_bridge.headers import layout as L
from firmware_bridge.headers.commands import command_key
from firmware_bridge.headers.errors import Layer
from firmware_bridge.headers.keys import Party, derive_key_bytes, hkdf_info, layer_key
from firmware_bridge.headers.seal import InnerFields, OuterFields, Position, seal_inner, seal_outer
from firmware_bridge.registers import register_map

CONTROLLER_PRIVATE = bytes(range(0x01, 0x21))
ROUTER_PRIVATE = bytes(range(0x21, 0x41))
SINK_PRIVATE = bytes(range(0x41, 0x61))
ROUTER = Party("router", "R3", 2)
SINK = Party("terminal", "MEC3", 5)
SOURCE_INDEX = 0
EPOCH, FRAME, SLOT, INDEX = 3, 0x01020304, 17, 1
OUTER = OuterFields(in_port=0, out_port=2, voltage_v=48.0, current_a=8.0, inner=b"")
INNER = InnerFields(transfer=4, packet=9, energy_j=1.8816, voltage_v=48.0, price=0.25)
ARM = {
    "session": 0x0A0B0C0D,
    "seq": 7,
    "frame": FRAME,
    "start_us": 1_234_567_890,
    "rate_ppb": -1500,
}


def vectors() -> list[tuple[str, str]]:
    """(name, value) pairs, in the order a firmware port would compute them."""
    ctl = X25519PrivateKey.from_private_bytes(CONTROLLER_PRIVATE)
    rtr = X25519PrivateKey.from_private_bytes(ROUTER_PRIVATE)
    snk = X25519PrivateKey.from_private_bytes(SINK_PRIVATE)
    ctl_pub = ctl.public_key().public_bytes_raw()
    out: list[tuple[str, str]] = [
        ("controller private", CONTROLLER_PRIVATE.hex()),
        ("controller public", ctl_pub.hex()),
        (f"router {ROUTER.name} (wire id {ROUTER.index}) private", ROUTER_PRIVATE.hex()),
        ("router public", rtr.public_key().public_bytes_raw().hex()),
        (f"sink {SINK.name} (wire id {SINK.index}) private", SINK_PRIVATE.hex()),
        ("sink public", snk.public_key().public_bytes_raw().hex()),
    ]
    layers: tuple[tuple[Layer, Party, X25519PrivateKey], ...] = (
        ("outer", ROUTER, rtr),
        ("inner", SINK, snk),
    )
    for layer, party, priv in layers:
        secret = ctl.exchange(priv.public_key())
        party_pub = priv.public_key().public_bytes_raw()
        key = derive_key_bytes(layer, secret, ctl_pub, party_pub, party, EPOCH)
        out += [
            (f"{layer}: X25519 secret", secret.hex()),
            (f"{layer}: HKDF salt", (ctl_pub + party_pub).hex()),
            (f"{layer}: HKDF info", hkdf_info(layer, party, EPOCH).decode()),
            (f"{layer}: AES-256-GCM-SIV key", key.hex()),
        ]
    sink_key = layer_key("inner", ctl, snk.public_key(), SINK, EPOCH, ROUTER.name, controller=True)
    router_key = layer_key(
        "outer", ctl, rtr.public_key(), ROUTER, EPOCH, ROUTER.name, controller=True
    )
    inner = seal_inner(sink_key, FRAME, SLOT, SOURCE_INDEX, INNER)
    e, v, p = (L.encode(L.INNER_BODY.field(n), getattr(INNER, k)) for n, k in _INNER_SCALED)
    outer_fields = OUTER._replace(inner=inner)
    outer = seal_outer(router_key, Position(FRAME, SLOT, INDEX), outer_fields)
    vi = L.encode(L.VOLTAGE, OUTER.voltage_v)
    ii = L.encode(L.OUTER_BODY.field("current_limit"), OUTER.current_a)
    ver, src, snk_id, rtr_id = L.LAYOUT_VERSION, SOURCE_INDEX, SINK.index, ROUTER.index
    inner_nonce = L.INNER_NONCE.struct.pack(L.LAYER_INNER, EPOCH, FRAME, SLOT, snk_id, 0)
    outer_nonce = L.OUTER_NONCE.struct.pack(L.LAYER_OUTER, EPOCH, FRAME, SLOT, INDEX, rtr_id)
    out += [
        ("position", f"epoch {EPOCH}, frame {FRAME}, slot {SLOT}, index {INDEX}, source {src}"),
        ("inner fields", f"{INNER} -> counts energy {e}, voltage {v}, price {p}"),
        ("inner nonce", inner_nonce.hex()),
        ("inner AD", L.INNER_AD.struct.pack(ver, EPOCH, FRAME, SLOT, src, snk_id).hex()),
        ("inner plaintext", L.INNER_BODY.struct.pack(INNER.transfer, INNER.packet, e, v, p).hex()),
        (f"inner entry ({len(inner)} bytes)", inner.hex()),
        (
            "outer fields",
            f"in_port {OUTER.in_port}, out_port {OUTER.out_port}, voltage {OUTER.voltage_v} V "
            f"-> {vi}, current limit {OUTER.current_a} A -> {ii}",
        ),
        ("outer nonce", outer_nonce.hex()),
        ("outer AD", L.OUTER_AD.struct.pack(ver, EPOCH, rtr_id, FRAME, SLOT, INDEX).hex()),
        (
            "outer plaintext",
            L.OUTER_BODY.struct.pack(OUTER.in_port, OUTER.out_port, vi, ii, inner).hex(),
        ),
        (f"outer entry ({len(outer)} bytes)", outer.hex()),
    ]
    return out + command_vectors(ctl, rtr)


def command_vectors(ctl: X25519PrivateKey, rtr: X25519PrivateKey) -> list[tuple[str, str]]:
    """An arm command for the same router and epoch: key, message, tag, registers."""
    from firmware_bridge.driver.commands import command_registers  # the driver's encoding

    rmap = register_map()
    key = command_key(ctl, rtr.public_key(), ROUTER, EPOCH, controller=True)
    regs = command_registers(rmap, key, "arm", **ARM)
    block = rmap.block("cmd_arm")
    body = b"".join(r.to_bytes(2, "big") for r in regs[: block.fields[-1].address - block.start])
    kind = rmap.code("command", "arm")
    fields = ", ".join(f"{k} {v}" for k, v in ARM.items())
    return [
        ("command: HKDF info", hkdf_info("command", ROUTER, EPOCH).decode()),
        ("command: HMAC-SHA-256 key", key.secret.hex()),
        ("arm command", f"kind {kind}, {fields}"),
        ("arm message (prefix, body)", key.message(kind, body).hex()),
        ("arm tag (HMAC-SHA-256-128)", key.tag(kind, body).hex()),
        (f"cmd_arm registers ({len(regs)})", " ".join(f"{r:04x}" for r in regs)),
    ]


_INNER_SCALED = (("energy", "energy_j"), ("voltage", "voltage_v"), ("price", "price"))


def render_vectors() -> str:
    width = max(len(name) for name, _ in vectors())
    lines = [f"{name.ljust(width)}  {value}" for name, value in vectors()]
    return "```\n" + "\n".join(lines) + "\n```\n"


def render_sizes() -> str:
    tag = L.TAG_BYTES
    rows = [
        ("outer entry (one slot-table entry, on the wire)", L.OUTER_ENTRY_BYTES),
        ("... clear header", L.OUTER_HEADER.size),
        (f"... outer ciphertext (plaintext, of which the inner entry {L.INNER_ENTRY_BYTES})",
         L.OUTER_BODY.size),
        ("... outer tag", tag),
        ("inner entry (inside the outer plaintext)", L.INNER_ENTRY_BYTES),
        ("... clear source id", L.INNER_HEADER.size),
        ("... inner ciphertext", L.INNER_BODY.size),
        ("... inner tag", tag),
    ]  # fmt: skip
    return "| what | bytes |\n| --- | ---: |\n" + "".join(f"| {w} | {n} |\n" for w, n in rows)


GENERATED = {"sizes": render_sizes, "layout": L.render_tables, "vectors": render_vectors}


def refresh(doc: str) -> str:
    return docblocks.refresh(doc, GENERATED)


def main(argv: list[str]) -> int:
    for name in argv:
        path = Path(name)
        path.write_text(refresh(path.read_text(encoding="utf-8")), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
