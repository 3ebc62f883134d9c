"""Clear one frame's market: the rule's passes, trades, payments, budget, and how far the
rule's welfare is from the optimum."""

from __future__ import annotations

import math
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from bench import Scenario, Topology
from scheduler.market.book import Book, Pass, PassOutcome
from scheduler.market.decompose import Trade
from scheduler.market.errors import MarketError
from scheduler.market.green import run_passes
from scheduler.market.mechanisms import nash_utilities, optimum_pass
from scheduler.market.network import MarketPacket, Participant, Side
from scheduler.market.registry import Mechanism, Rule, rule_named


@dataclass(frozen=True, slots=True)
class Settlement:
    id: str
    side: Side
    terminal: str
    quoted: int  # packets offered or bid
    price: float  # per packet, as quoted
    packets: int  # allocated
    payment: float  # to the operator; negative: received from it
    utility: float  # net gain at the quoted price (and premium)
    green_packets: int = 0  # of the allocated packets, those of green energy


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
    optimum_welfare: float = math.nan  # the welfare of VCG's allocation (the optimum)
    green: bool = True  # the green pass ran first (green_matching)

    @property
    def budget(self) -> float:
        """The operator's balance: payments in, minus payments out, minus the losses it
        buys. Equal to welfare minus the sum of utilities; VCG runs a deficit."""
        return math.fsum(s.payment for s in self.participants) - self.loss_cost

    @property
    def traded(self) -> int:
        return sum(t.packets for t in self.trades)

    @property
    def volume(self) -> int:
        """Packets traded (the same as ``traded``)."""
        return self.traded

    @property
    def welfare_gap(self) -> float:
        """How much welfare the rule leaves on the table: the optimum minus its welfare
        (0 for VCG and Nash, which trade the optimum)."""
        return self.optimum_welfare - self.welfare

    @property
    def green_j(self) -> float:
        """Green joules the trades bring to buyers' terminals (the planning model)."""
        return math.fsum(t.green_j for t in self.trades)

    def settlement(self, participant_id: str) -> Settlement:
        return next(s for s in self.participants if s.id == participant_id)

    def to_json(self) -> dict[str, Any]:
        p = self.packet
        return {
            "scenario": self.scenario,
            "mechanism": self.mechanism,
            "green_pass": self.green,
            "packet": {"voltage_v": p.voltage_v, "current_a": p.current_a, "energy_j": p.energy_j},
            "slots": self.slots,
            "welfare": self.welfare,
            "optimum_welfare": self.optimum_welfare,
            "welfare_gap": self.welfare_gap,
            "volume": self.volume,
            "budget": self.budget,
            "loss_cost": self.loss_cost,
            "loss_j": self.loss_j,
            "green_j": self.green_j,
            "traded_packets": self.traded,
            "participants": [
                {
                    "id": s.id,
                    "side": s.side,
                    "terminal": s.terminal,
                    "quoted_packets": s.quoted,
                    "price": s.price,
                    "packets": s.packets,
                    "green_packets": s.green_packets,
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
                    "loss_j_per_packet": t.loss_j,
                    "value": t.value,
                    "ask": t.ask,
                    "buyer_price": t.buyer_price,
                    "seller_price": t.seller_price,
                    "green": t.green,
                    "sink_j": t.sink_j,
                    "green_j": t.green_j,
                }
                for t in self.trades
            ],
            "resolves": self.resolves,
            "solve_ms": round(self.solve_ms, 3),
        }


def clear_market(
    scenario: Scenario,
    topology: Topology,
    mechanism: Mechanism | str = "vcg",
    *,
    weights: Mapping[str, float] | None = None,
    green: bool = True,
) -> MarketResult:
    """Match a checked scenario's offers and bids by ``mechanism`` (a name in
    ``MECHANISMS``) and price the match.

    ``weights`` (Nash only) are bargaining weights by participant id, 1 when absent.
    ``green``: run the green pass first (see ``scheduler.market.green``).
    """
    rule = rule_named(mechanism)
    if weights and rule.name != "nash":
        raise MarketError("--weight", "bargaining weights apply to --mechanism nash only")
    start = time.perf_counter()
    book = Book.of(scenario, topology)
    passes = run_passes(book, rule.clear, green)
    trades, premiums = _valued(book, passes, green)
    welfare = _welfare(trades)
    if rule.optimal:
        optimum = welfare
    else:
        optimum = _welfare(_valued(book, run_passes(book, optimum_pass, green), green)[0])
    participants = _settle(book, rule, passes, trades, premiums, weights)
    if rule.pricing != "trade":
        trades = _average_prices(trades, participants)
    return MarketResult(
        scenario=scenario.name,
        mechanism=rule.name,
        packet=book.packet,
        slots=book.slots,
        participants=participants,
        trades=trades,
        welfare=welfare,
        loss_cost=math.fsum(t.packets * t.loss_cost for t in trades),
        loss_j=math.fsum(t.packets * t.loss_j for t in trades),
        resolves=sum(outcome.resolves for _, outcome in passes),
        solve_ms=(time.perf_counter() - start) * 1000.0,
        optimum_welfare=optimum,
        green=green,
    )


def _welfare(trades: tuple[Trade, ...]) -> float:
    return 0.0 + math.fsum(t.packets * t.gain for t in trades)  # 0.0 +: never -0.0


def _valued(
    book: Book, passes: list[tuple[Pass, PassOutcome]], green: bool
) -> tuple[tuple[Trade, ...], dict[str, float]]:
    """The passes' trades with what they are worth: the buyer's value (premium included
    for green energy), the seller's ask, the energy at the buyer and whether it is green;
    and the premiums sellers receive on top of the open pass's prices (a green trade to a
    bid with a premium outside the green pass, ``scheduler.market.green``)."""
    by_id = {p.id: p for p in book.participants}
    sink_j = book.packet.energy_j
    out = []
    premiums: dict[str, float] = defaultdict(float)
    for this, outcome in passes:
        for t in outcome.trades:
            seller, buyer = by_id[t.seller], by_id[t.buyer]
            premium = buyer.premium if green and seller.green else 0.0
            extra = premium if this.name == "open" else 0.0  # the green pass quoted it
            premiums[seller.id] += extra * t.packets
            energy = t.packets * (sink_j - t.loss_j)
            out.append(
                replace(
                    t,
                    value=buyer.price + premium,
                    ask=seller.price,
                    buyer_price=t.buyer_price + extra,
                    seller_price=t.seller_price + extra,
                    green=seller.green,
                    sink_j=energy,
                    green_j=energy if seller.green else 0.0,
                )
            )
    return tuple(out), premiums


def _settle(
    book: Book,
    rule: Rule,
    passes: list[tuple[Pass, PassOutcome]],
    trades: tuple[Trade, ...],
    premiums: Mapping[str, float],
    weights: Mapping[str, float] | None,
) -> tuple[Settlement, ...]:
    """Each participant's packets, payment and utility under the rule's pricing:

    * trade: what its trades' prices say; utility = gross - payment;
    * clarke: utility = its VCG utility in each pass, plus open-pass premiums received;
    * nash: utility = its weighted share of the welfare (both passes);

    and payment = gross - utility, with gross = value bought, or minus the asks sold."""
    packets: dict[str, int] = defaultdict(int)
    green_packets: dict[str, int] = defaultdict(int)
    gross: dict[str, list[float]] = defaultdict(list)
    paid: dict[str, list[float]] = defaultdict(list)
    for t in trades:
        for pid in (t.seller, t.buyer):
            packets[pid] += t.packets
            green_packets[pid] += t.packets if t.green else 0
        gross[t.buyer].append(t.value * t.packets)
        gross[t.seller].append(-t.ask * t.packets)
        paid[t.buyer].append(t.buyer_price * t.packets)
        paid[t.seller].append(-t.seller_price * t.packets)
    ids = [p.id for p in book.participants]
    if rule.pricing == "nash":
        nash = nash_utilities(ids, [packets[i] for i in ids], _welfare(trades), weights)
    out = []
    for k, p in enumerate(book.participants):
        g = math.fsum(gross[p.id])
        if rule.pricing == "trade":
            payment = math.fsum(paid[p.id])
            utility = g - payment
        else:
            if rule.pricing == "clarke":
                pass_utilities = [o.utility.get(p.id, 0.0) for _, o in passes]
                utility = math.fsum([*pass_utilities, premiums.get(p.id, 0.0)])
            else:
                utility = nash[k]
            payment = g - utility
        out.append(_settlement(p, packets[p.id], green_packets[p.id], payment, utility))
    return tuple(out)


def _settlement(
    p: Participant, packets: int, green_packets: int, payment: float, utility: float
) -> Settlement:
    return Settlement(
        p.id, p.side, p.terminal, p.packets, p.price, packets,
        payment + 0.0, utility + 0.0, green_packets,
    )  # fmt: skip


def _average_prices(
    trades: tuple[Trade, ...], participants: tuple[Settlement, ...]
) -> tuple[Trade, ...]:
    """VCG and Nash price participants, not trades: each trade shows its buyer's and its
    seller's payment per packet."""
    each = {s.id: s.payment / s.packets for s in participants if s.packets}
    return tuple(
        replace(t, buyer_price=each[t.buyer], seller_price=-each[t.seller]) for t in trades
    )
