"""What every pass of one clearing shares: the participants, the market packet, the room
left on each resource, and the candidate routes between two terminals.

A *pass* is one run of a matching rule on part of the book: the green pass (green
offers, bids that seek green energy at their price plus premium) and the open pass (what
is left). Each pass takes the room the passes before it left and returns trades.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Literal

from bench import Scenario, Topology, Transfer
from scheduler.market.decompose import Trade
from scheduler.market.network import MarketPacket, Participant, market_packet, participants_of
from scheduler.routes import DEFAULT_K, RouteFinder

PassName = Literal["green", "open"]


@dataclass(frozen=True, slots=True)
class RouteCost:
    """One candidate route between a seller's and a buyer's terminal."""

    route: tuple[str, ...]  # resource ids, seller's terminal first
    loss_j: float  # joules one market packet loses on it
    cost: float  # that loss at loss_price_per_j: the route's transport cost per packet


@dataclass(frozen=True, eq=False)
class Book:
    """One clearing's participants (offers, then bids, in file order) on one bench."""

    scenario: Scenario
    topology: Topology
    participants: tuple[Participant, ...]
    packet: MarketPacket

    @classmethod
    def of(cls, scenario: Scenario, topology: Topology) -> Book:
        participants = participants_of(scenario)
        return cls(scenario, topology, participants, market_packet(scenario, participants))

    @property
    def slots(self) -> int:
        return self.scenario.frame.slots

    @property
    def loss_price(self) -> float:
        return self.scenario.costs.loss_price_per_j

    def full_room(self) -> dict[str, int]:
        """Packets every resource may carry in the frame: one per slot, both directions of
        a line or SOP together."""
        return dict.fromkeys(self.topology.resources, self.slots)

    def routes(self, seller_terminal: str, buyer_terminal: str) -> tuple[RouteCost, ...]:
        """The ``DEFAULT_K`` cheapest simple routes within every current and power limit
        of the market packet (the planner's route search), cheapest first."""
        key = (seller_terminal, buyer_terminal)
        if key not in self._routes:
            p = self.packet
            probe = Transfer(
                id="market",
                source=seller_terminal,
                sink=buyer_terminal,
                packets=0,
                voltage_v=p.voltage_v,
                current_a=p.current_a,
                value=0.0,
            )
            found = []
            for route in self._finder.routes(probe, DEFAULT_K):
                joules = [
                    self.topology.resources[r].packet_loss_j(p.voltage_v, p.current_a, p.tau_s)
                    for r in route
                ]
                cost = math.fsum(self.loss_price * j for j in joules)
                found.append(RouteCost(route, math.fsum(joules), cost))
            self._routes[key] = tuple(found)
        return self._routes[key]

    @cached_property
    def _finder(self) -> RouteFinder:
        return RouteFinder(self.topology, self.packet.tau_s)

    _routes: dict[tuple[str, str], tuple[RouteCost, ...]] = field(
        default_factory=dict, init=False, repr=False
    )


@dataclass(frozen=True)
class Pass:
    """One pass of a clearing: who may still trade, at the price each quotes in this
    pass, and the room the earlier passes left."""

    name: PassName
    participants: tuple[Participant, ...]  # packets: what is left; price: as quoted here
    room: Mapping[str, int]


@dataclass(frozen=True)
class PassOutcome:
    """A rule's trades in one pass. Rules that price each trade set its prices; VCG
    gives every participant's utility in the pass instead (Clarke pivot)."""

    trades: tuple[Trade, ...]
    utility: Mapping[str, float] = field(default_factory=dict)
    resolves: int = 0
