"""Seal a whole frame: planned packets into one slot table of outer entries per router.

Each packet gets one inner entry (for its sink's meter, bound to its delivery slot) and
one outer entry per router it crosses, holding that inner entry. A packet held in a
router's store becomes two entries at that router: ``in_port -> STORE_PORT`` in the
arrival slot and ``STORE_PORT -> out_port`` in the departure slot. Entries of one router
and slot are numbered 0, 1, ... in plan order; that number is the table index.

Wire ids: routers and terminals by their index in the key store (``SealingKeys``),
transfers by their index in ``scenario.transfers``, packets by their order within their
transfer in this frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from bench import Scenario, Topology
from firmware_bridge.headers import layout as L
from firmware_bridge.headers.errors import NonceConflictError, SealError, UnknownPartyError
from firmware_bridge.headers.keys import LayerKey
from firmware_bridge.headers.seal import seal_inner_counts, seal_outer_counts


class PacketLike(Protocol):
    """A planned packet (``scheduler.PlannedPacket`` fits; firmware_bridge does not
    import the scheduler)."""

    @property
    def transfer(self) -> str: ...

    @property
    def route(self) -> Sequence[str]: ...

    @property
    def slots(self) -> Sequence[int]: ...


@dataclass(frozen=True)
class SealingKeys:
    """The controller's keys of one epoch: outer keys by router id, inner keys by
    terminal id (their ``party.index`` is the terminal's wire id)."""

    epoch: int
    outer: Mapping[str, LayerKey]
    inner: Mapping[str, LayerKey]


# (slot, index, blob): one written position of a router's slot table
TableEntry = tuple[int, int, bytes]


@dataclass(frozen=True)
class SealedFrame:
    frame: int
    epoch: int
    tables: dict[str, list[TableEntry]] = field(default_factory=dict)  # by router id, sorted

    @property
    def entries(self) -> int:
        return sum(len(t) for t in self.tables.values())


@dataclass(frozen=True)
class _Hop:
    key: LayerKey
    in_port: int
    out_port: int
    table: list[TableEntry]  # the router's table in the frame being sealed
    used: dict[int, int]  # slot -> entries already in it (the next index)


@dataclass(frozen=True)
class _Route:
    """Everything about a route that does not change from packet to packet."""

    hops: tuple[_Hop, ...]
    sink: LayerKey
    source: int


def seal_frame(
    scenario: Scenario,
    topology: Topology,
    keys: SealingKeys,
    frame: int,
    packets: Iterable[PacketLike],
    prices: Mapping[str, float] | None = None,
) -> SealedFrame:
    """Seal every packet of a (checked) plan for ``frame``. ``prices``: per-packet trade
    price by transfer id, carried as the inner price reference (0 when absent)."""
    transfer_index = {t.id: i for i, t in enumerate(scenario.transfers)}
    counts = _transfer_counts(scenario, frame, prices or {})
    tables: dict[str, list[TableEntry]] = {}
    used: dict[str, dict[int, int]] = {}
    routes: dict[tuple[str, ...], _Route] = {}
    delivered: set[tuple[str, int]] = set()
    packet_no: dict[str, int] = {}
    store = L.STORE_PORT
    for p in packets:
        route, slots = tuple(p.route), p.slots
        if len(slots) != len(route):
            raise SealError(
                f"packet of {p.transfer}: {len(route)} resources but {len(slots)} slots",
                frame=frame,
            )
        r = routes.get(route)
        if r is None:
            r = routes[route] = _route(topology, keys, route, tables, used, frame)
        delivery = slots[-1]
        if (route[-1], delivery) in delivered:
            raise NonceConflictError(
                f"two packets delivered to {route[-1]} in slot {delivery}", frame=frame
            )
        delivered.add((route[-1], delivery))
        n = packet_no.get(p.transfer, 0)
        packet_no[p.transfer] = n + 1
        energy, volts, amps, price = counts[p.transfer]
        inner = seal_inner_counts(
            r.sink, frame, delivery, r.source, transfer_index[p.transfer], n, energy, volts, price
        )
        for j, hop in enumerate(r.hops):
            arrive, leave = slots[j], slots[j + 1]
            if arrive == leave:  # cut-through: one entry
                steps: tuple[tuple[int, int, int], ...] = ((arrive, hop.in_port, hop.out_port),)
            elif arrive < leave:  # held in the store: in, then out
                steps = ((arrive, hop.in_port, store), (leave, store, hop.out_port))
            else:
                raise SealError(
                    f"packet of {p.transfer} leaves {hop.key.router_id} (slot {leave}) before "
                    f"it arrives (slot {arrive})",
                    frame=frame,
                )
            for slot, a, b in steps:
                index = hop.used.get(slot, 0)
                hop.used[slot] = index + 1
                blob = seal_outer_counts(hop.key, frame, slot, index, a, b, volts, amps, inner)
                hop.table.append((slot, index, blob))
    for table in tables.values():
        table.sort()  # positions are unique: the blobs are never compared
    return SealedFrame(frame, keys.epoch, tables)


def _transfer_counts(
    scenario: Scenario, frame: int, prices: Mapping[str, float]
) -> dict[str, tuple[int, int, int, int]]:
    """Fixed-point (energy, voltage, current, price) of every transfer, encoded once."""
    out = {}
    tau = scenario.frame.tau_s
    for t in scenario.transfers:
        values = {
            L.INNER_BODY.field("energy"): t.voltage_v * t.current_a * tau,
            L.VOLTAGE: t.voltage_v,
            L.OUTER_BODY.field("current_limit"): t.current_a,
            L.INNER_BODY.field("price"): prices.get(t.id, 0.0),
        }
        e, v, i, p = (
            L.encode(f, x, label=f"transfers[{t.id}].{f.name}", frame=frame)
            for f, x in values.items()
        )
        out[t.id] = (e, v, i, p)
    return out


def _route(
    topology: Topology,
    keys: SealingKeys,
    route: tuple[str, ...],
    tables: dict[str, list[TableEntry]],
    used: dict[str, dict[int, int]],
    frame: int,
) -> _Route:
    hops = []
    for h in topology.hops(route):
        key = _key(keys.outer, h.router, "router", frame)
        table, counter = tables.setdefault(h.router, []), used.setdefault(h.router, {})
        hops.append(_Hop(key, h.in_port, h.out_port, table, counter))
    sink = _key(keys.inner, route[-1], "terminal", frame)
    source = _key(keys.inner, route[0], "terminal", frame).party.index
    return _Route(tuple(hops), sink, source)


def _key(table: Mapping[str, LayerKey], name: str, kind: str, frame: int) -> LayerKey:
    try:
        return table[name]
    except KeyError:
        raise UnknownPartyError(
            f"{kind} '{name}' has no key in this epoch; add it with: ppr keys rotate SCENARIO",
            frame=frame,
        ) from None
