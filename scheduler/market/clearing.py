"""Clear one frame's market: allocation, trades, payments, budget."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench import Scenario, Topology
from scheduler.market.decompose import Trade, decompose
from scheduler.market.errors import MarketError
from scheduler.market.flow import FlowSolver, cancel_opposite, welfare
from scheduler.market.mechanisms import (
    MECHANISMS,
    Mechanism,
    nash_utilities,
    payments,
    vcg_utilities,
)
from scheduler.market.network import MarketPacket, Side, build_network


@dataclass(frozen=True, slots=True)
class Settlement:
    id: str
    side: Side
    terminal: str
    quoted: int  # packets offered or bid
    price: float  # per packet, as quoted
    packets: int  # allocated
    payment: float  # to the operator; negative: received from it
    utility: float  # net gain at the quoted price


@dataclass(frozen=True)
class MarketResult:
    scenario: str
    mechanism: Mechanism
    packet: MarketPacket
    slots: int
    participants: tuple[Settlement, ...]
    trades: tuple[Trade, ...]
    welfare: float  # values of packets bought - asks of packets sold - priced losses
    loss_cost: float
    loss_j: float
    resolves: int  # solves after the welfare solve (VCG: one per trading participant)
    solve_ms: float

    @property
    def budget(self) -> float:
        """The operator's balance: payments in, minus payments out, minus the losses it
        buys. Equal to welfare minus the sum of utilities; VCG runs a deficit."""
        return math.fsum(s.payment for s in self.participants) - self.loss_cost

    @property
    def traded(self) -> int:
        return sum(t.packets for t in self.trades)

    def settlement(self, participant_id: str) -> Settlement:
        return next(s for s in self.participants if s.id == participant_id)

    def to_json(self) -> dict[str, Any]:
        p = self.packet
        return {
            "scenario": self.scenario,
            "mechanism": self.mechanism,
            "packet": {"voltage_v": p.voltage_v, "current_a": p.current_a, "energy_j": p.energy_j},
            "slots": self.slots,
            "welfare": self.welfare,
            "loss_cost": self.loss_cost,
            "loss_j": self.loss_j,
            "budget": self.budget,
            "traded_packets": self.traded,
            "participants": [
                {
                    "id": s.id,
                    "side": s.side,
                    "terminal": s.terminal,
                    "quoted_packets": s.quoted,
                    "price": s.price,
                    "packets": s.packets,
                    "payment": s.payment,
                    "utility": s.utility,
                }
                for s in self.participants
            ],
            "trades": [
                {
                    "seller": t.seller,
                    "buyer": t.buyer,
                    "route": list(t.route),
                    "packets": t.packets,
                    "loss_cost_per_packet": t.loss_cost,
                }
                for t in self.trades
            ],
            "resolves": self.resolves,
            "solve_ms": round(self.solve_ms, 3),
        }


def clear_market(
    scenario: Scenario,
    topology: Topology,
    mechanism: Mechanism = "vcg",
    *,
    weights: Mapping[str, float] | None = None,
) -> MarketResult:
    """Match a checked scenario's offers and bids and price the match.

    ``weights`` (Nash only) are bargaining weights by participant id, 1 when absent.
    """
    if mechanism not in MECHANISMS:
        raise MarketError("--mechanism", f"unknown '{mechanism}' (choose {', '.join(MECHANISMS)})")
    if weights and mechanism != "nash":
        raise MarketError("--weight", "bargaining weights apply to --mechanism nash only")
    start = time.perf_counter()
    net = build_network(scenario, topology)
    n = net.n_participants
    solver = FlowSolver(net)
    flow = cancel_opposite(net, solver.solve())
    total = welfare(net, flow)
    allocated = flow[:n]
    if mechanism == "vcg":
        utility = vcg_utilities(net, solver, allocated, total)
    else:
        utility = nash_utilities(net, allocated, total, weights)
    paid = payments(net, allocated, utility)
    trades = decompose(net, flow)
    network_arcs = np.arange(n, net.n_arcs)
    return MarketResult(
        scenario=scenario.name,
        mechanism=mechanism,
        packet=net.packet,
        slots=net.slots,
        participants=tuple(
            Settlement(
                p.id,
                p.side,
                p.terminal,
                p.packets,
                p.price,
                int(allocated[i]),
                float(paid[i]),
                float(utility[i]),
            )
            for i, p in enumerate(net.participants)
        ),
        trades=trades,
        welfare=total,
        loss_cost=math.fsum((net.cost[network_arcs] * flow[network_arcs]).tolist()),
        loss_j=math.fsum((net.loss_j[network_arcs] * flow[network_arcs]).tolist()),
        resolves=int(np.count_nonzero(allocated)) if mechanism == "vcg" else 0,
        solve_ms=(time.perf_counter() - start) * 1000.0,
    )
