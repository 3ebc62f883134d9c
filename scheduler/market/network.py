"""The market of one frame as a min-cost flow network.

Nodes: the market's source and sink, every router, and one node per quoting terminal.
Arcs, one per LP column later (participants first, so arc ``i`` is participant ``i``):

    offer   source -> seller's terminal    capacity = packets offered   cost = +price
    bid     buyer's terminal -> sink       capacity = packets bid       cost = -price
    access  terminal -> its router (seller) or router -> terminal (buyer)
    link    both directions of every line and SOP the market packet may cross

Access and link arcs carry at most one packet per slot, so their capacity is the frame's
slot count (or the room an earlier pass of the clearing left on them); their cost is
the loss of one packet on that resource priced at ``loss_price_per_j``, exactly as the
planner prices it. The source and the sink have no
conservation row: what is offered but not sold stays home at zero cost (the bypass), so
the flow never makes a trade that lowers welfare.

The market packet is one size for everybody, so that a price per packet means the same
energy to every participant: the voltage of the quoting terminals (they must share one)
and the smallest ``max_current_a`` among them. Lines and SOPs whose current or power
limit that packet exceeds get no arcs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from bench import Scenario, Topology
from scheduler.market.errors import MarketError
from scheduler.problem import FloatArray, IntArray

Side = Literal["offer", "bid"]

SOURCE, SINK = 0, 1


@dataclass(frozen=True, slots=True)
class MarketPacket:
    voltage_v: float
    current_a: float
    tau_s: float

    @property
    def energy_j(self) -> float:
        return self.voltage_v * self.current_a * self.tau_s


@dataclass(frozen=True, slots=True)
class Participant:
    id: str
    side: Side
    terminal: str
    packets: int
    price: float  # as quoted: a seller's ask, a buyer's value per packet
    green: bool = False  # offer: the energy is of renewable origin
    premium: float = 0.0  # bid: paid on top per packet of green energy
    green_only: bool = False  # bid: green energy or nothing

    @property
    def seeks_green(self) -> bool:
        """A bid that values green energy above other energy."""
        return self.side == "bid" and (self.green_only or self.premium > 0)


@dataclass(frozen=True, eq=False)
class MarketNetwork:
    scenario: str
    packet: MarketPacket
    slots: int
    participants: tuple[Participant, ...]
    n_nodes: int
    tail: IntArray
    head: IntArray
    cap: IntArray
    cost: FloatArray  # per packet: +price (offer), -price (bid), priced loss otherwise
    loss_j: FloatArray  # per packet: joules lost on the arc's resource (0 on quote arcs)
    resource: tuple[str, ...]  # resource id of each arc ("" for quote arcs)
    reverse: IntArray  # the opposite direction of a link arc, -1 for every other arc

    @property
    def n_arcs(self) -> int:
        return len(self.tail)

    @property
    def n_participants(self) -> int:
        return len(self.participants)


def participants_of(scenario: Scenario) -> tuple[Participant, ...]:
    """Offers then bids, each in file order (the book's time order)."""
    offers = [
        Participant(q.id, "offer", q.terminal, q.packets, q.price, green=q.green)
        for q in scenario.offers
    ]
    bids = [
        Participant(
            q.id,
            "bid",
            q.terminal,
            q.packets,
            q.price,
            premium=q.green_premium,
            green_only=q.green_only,
        )
        for q in scenario.bids
    ]
    return (*offers, *bids)


def market_packet(scenario: Scenario, participants: tuple[Participant, ...]) -> MarketPacket:
    """The one packet size of the market (see the module text)."""
    terminals = {t.id: t for t in scenario.terminals}
    first = None
    sides: dict[str, tuple[Side, str]] = {}
    for p in participants:
        where = f"{p.side}s[{p.id}].terminal"
        term = terminals[p.terminal]
        other = sides.setdefault(p.terminal, (p.side, p.id))
        if other[0] != p.side:
            raise MarketError(
                where,
                f"terminal '{p.terminal}' already quotes the other side ({other[0]}s[{other[1]}]); "
                "a terminal either sells or buys in one frame",
            )
        if first is None:
            first = term
        elif term.voltage_v != first.voltage_v:
            raise MarketError(
                where,
                f"terminal '{term.id}' is at {term.voltage_v:g} V but '{first.id}' is at "
                f"{first.voltage_v:g} V; market packets need one voltage level",
            )
    if first is None:
        return MarketPacket(0.0, 0.0, scenario.frame.tau_s)
    current = min(terminals[p.terminal].max_current_a for p in participants)
    return MarketPacket(first.voltage_v, current, scenario.frame.tau_s)


def build_network(
    scenario: Scenario,
    topology: Topology,
    participants: tuple[Participant, ...] | None = None,
    *,
    packet: MarketPacket | None = None,
    room: Mapping[str, int] | None = None,
) -> MarketNetwork:
    """The flow network of a checked scenario's offers and bids, or of ``participants``
    (one pass of the clearing: what they have left, at the price they quote in it) in
    ``room`` (packets each access, line and SOP may still carry; ``slots`` when absent)."""
    if participants is None:
        participants = participants_of(scenario)
    if packet is None:
        packet = market_packet(scenario, participants)
    slots = scenario.frame.slots
    room = room or {}
    price_j = scenario.costs.loss_price_per_j
    routers = list(topology.routers)
    node_of = {r: 2 + i for i, r in enumerate(routers)}
    quoting = list(dict.fromkeys(p.terminal for p in participants))
    node_of |= {t: 2 + len(routers) + i for i, t in enumerate(quoting)}
    n_nodes = 2 + len(routers) + len(quoting)

    tail: list[int] = []
    head: list[int] = []
    cap: list[int] = []
    cost: list[float] = []
    loss: list[float] = []
    resource: list[str] = []

    def arc(a: int, b: int, capacity: int, price: float, joules: float, rid: str) -> None:
        tail.append(a)
        head.append(b)
        cap.append(capacity)
        cost.append(price)
        loss.append(joules)
        resource.append(rid)

    for p in participants:
        if p.side == "offer":
            arc(SOURCE, node_of[p.terminal], p.packets, p.price, 0.0, "")
        else:
            arc(node_of[p.terminal], SINK, p.packets, -p.price, 0.0, "")
    v, i, tau = packet.voltage_v, packet.current_a, packet.tau_s
    sells = {p.terminal for p in participants if p.side == "offer"}
    for tid in quoting:
        res = topology.resources[tid]
        joules = res.packet_loss_j(v, i, tau)
        router = node_of[res.ends[0].router]
        ends = (node_of[tid], router) if tid in sells else (router, node_of[tid])
        arc(*ends, room.get(tid, slots), price_j * joules, joules, tid)
    n_before_links = len(tail)
    if participants:
        for rid, res in topology.resources.items():
            if res.kind == "access" or res.limit_violation(v, i) is not None:
                continue
            joules = res.packet_loss_j(v, i, tau)
            a, b = (node_of[end.router] for end in res.ends)
            arc(a, b, room.get(rid, slots), price_j * joules, joules, rid)
            arc(b, a, room.get(rid, slots), price_j * joules, joules, rid)
    reverse = np.full(len(tail), -1, dtype=np.int64)
    links = np.arange(n_before_links, len(tail))
    reverse[links] = n_before_links + ((links - n_before_links) ^ 1)  # arcs come in pairs
    return MarketNetwork(
        scenario=scenario.name,
        packet=packet,
        slots=slots,
        participants=participants,
        n_nodes=n_nodes,
        tail=np.asarray(tail, dtype=np.int64),
        head=np.asarray(head, dtype=np.int64),
        cap=np.asarray(cap, dtype=np.int64),
        cost=np.asarray(cost, dtype=np.float64),
        loss_j=np.asarray(loss, dtype=np.float64),
        resource=tuple(resource),
        reverse=reverse,
    )
