"""Settle a frame: what each transfer delivered against its plan, and who owes whom.

Pure: scenario, plan, market result and metered energy in, a ledger out.

Energy. A packet leaves its source with ``E = V * I * tau`` (docs/design.md); the sink's
meter sees what is left after the route's losses. The plan is settled against what the
sink *should* receive under the planning model: ``E`` minus that packet's route losses
(``I^2 R tau`` on accesses and lines, ``loss_coeff * E`` on SOPs). Settling against
``E`` itself would call every healthy frame short by exactly its line losses, which the
market already priced and the operator already pays for (``MarketResult.budget``).
A delivery within ``tolerance`` of the plan (meter accuracy) counts as complete.

Money (only for the market's transfers; explicit transfers settle energy only):

* market payments are paid pro rata to delivery: each participant pays (or is paid) its
  cleared ``payment`` times the packets its trades delivered over the packets it was
  allocated. A frame in which every allocated packet is planned and delivered settles
  to exactly the market's payments;
* a seller whose transfer delivers less than planned compensates the buyer for the
  shortfall: the buyer's bid price per packet short plus ``grid_retail_price_per_j`` per
  joule short (what the buyer pays the grid instead). Packets the planner could not fit
  are nobody's shortfall: they are simply not paid.

Every amount is an entry (payer, payee, amount) of the frame's ledger, so money is
conserved by construction: the balances of all parties, the operator included, sum to 0.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from typing import Any, Literal

from bench import Scenario, Topology
from scheduler import Plan
from scheduler.market import MarketResult, Trade, market_transfers

OPERATOR = "operator"
DEFAULT_TOLERANCE = 0.01  # a class-1 energy meter's accuracy


class SettlementError(Exception):
    """Inputs that do not describe one frame: a plan naming transfers the scenario lacks,
    metered energy missing, negative or for an unknown transfer."""


@dataclass(frozen=True, slots=True)
class SettlementConfig:
    grid_retail_price_per_j: float = 0.0
    tolerance: float = DEFAULT_TOLERANCE  # relative

    def __post_init__(self) -> None:
        if not (math.isfinite(self.grid_retail_price_per_j) and self.grid_retail_price_per_j >= 0):
            raise SettlementError(
                f"grid_retail_price_per_j = {self.grid_retail_price_per_j!r} must be >= 0"
            )
        if not (math.isfinite(self.tolerance) and 0 <= self.tolerance < 1):
            raise SettlementError(f"tolerance = {self.tolerance!r} is outside [0, 1)")


@dataclass(frozen=True, slots=True)
class TransferSettlement:
    transfer: str
    seller: str | None  # market participants; None for an explicit transfer
    buyer: str | None
    planned_packets: int
    planned_source_j: float  # V * I * tau per planned packet
    planned_sink_j: float  # minus the planning model's losses on each packet's route
    delivered_j: float  # the sink meter's reading attributed to this transfer
    delivered_packets: float  # credited: planned, or pro rata when short
    shortfall_j: float
    shortfall_packets: float
    compensation: float  # seller -> buyer


@dataclass(frozen=True, slots=True)
class LedgerEntry:
    payer: str
    payee: str
    amount: float  # > 0
    reason: Literal["market", "compensation"]
    transfer: str | None = None


@dataclass(frozen=True, slots=True)
class ParticipantSettlement:
    id: str
    side: Literal["offer", "bid"]
    terminal: str
    allocated: int  # packets the market allocated
    delivered_packets: float  # credited over its trades
    market_payment: float  # as cleared, to the operator (negative: from it)
    paid: float  # the market payment pro rata to delivery, same sign
    compensation: float  # received (+) or paid (-) for shortfalls
    net: float  # money received minus money paid, this frame


@dataclass(frozen=True)
class FrameSettlement:
    frame: int
    transfers: tuple[TransferSettlement, ...]
    participants: tuple[ParticipantSettlement, ...]
    ledger: tuple[LedgerEntry, ...]

    def balance(self, party: str) -> float:
        """Money ``party`` received minus money it paid (the operator included)."""
        return _balance(self.ledger, party)

    @property
    def parties(self) -> tuple[str, ...]:
        seen = dict.fromkeys(p.id for p in self.participants)
        seen.update(dict.fromkeys(e.payer for e in self.ledger))
        seen.update(dict.fromkeys(e.payee for e in self.ledger))
        return tuple(seen)

    def to_json(self) -> dict[str, Any]:
        return {
            "frame": self.frame,
            "transfers": [asdict(t) for t in self.transfers],
            "participants": [asdict(p) for p in self.participants],
            "ledger": [asdict(e) for e in self.ledger],
            "operator_net": self.balance(OPERATOR),
        }


def market_trades(scenario: Scenario, market: MarketResult) -> dict[str, Trade]:
    """Transfer id -> trade, named as ``with_market_transfers(scenario, market)`` names
    them (``S1-B2``, ``S1-B2.2`` for a second route)."""
    added = market_transfers(scenario, market)
    return {t.id: trade for t, trade in zip(added, market.trades, strict=True)}


def settle_frame(
    frame: int,
    scenario: Scenario,
    plan: Plan,
    delivered_j: Mapping[str, float],
    *,
    market: MarketResult | None = None,
    config: SettlementConfig | None = None,
) -> FrameSettlement:
    """Settle one frame.

    ``scenario`` is the scenario *before* the market's transfers were added (what the
    frame loop passed to ``with_market_transfers``); ``plan`` the frame's plan;
    ``delivered_j`` the energy each planned transfer's sink meter attributed to it."""
    config = config or SettlementConfig()
    trades = market_trades(scenario, market) if market is not None else {}
    planned = {t.id: t for t in scenario.transfers}
    if market is not None:
        planned.update({t.id: t for t in market_transfers(scenario, market)})
    energy = _planned_energy(scenario, plan, planned)
    _check_delivered(delivered_j, energy)
    price = {s.id: s.price for s in market.participants} if market else {}
    results = []
    for tid, (packets, source_j, sink_j) in energy.items():
        trade = trades.get(tid)
        buyer_price = price[trade.buyer] if trade else 0.0
        results.append(
            _settle_transfer(
                tid, trade, packets, source_j, sink_j, delivered_j.get(tid, 0.0),
                buyer_price, config,
            )
        )  # fmt: skip
    ledger = [
        LedgerEntry(t.seller, t.buyer, t.compensation, "compensation", t.transfer)
        for t in results
        if t.seller and t.buyer and t.compensation > 0
    ]
    participants = _participants(market, results, ledger) if market else ()
    return FrameSettlement(frame, tuple(results), participants, tuple(ledger))


def _planned_energy(
    scenario: Scenario, plan: Plan, transfers: Mapping[str, Any]
) -> dict[str, tuple[int, float, float]]:
    """Per transfer: planned packets, energy at the source, energy due at the sink."""
    full = scenario.model_copy(update={"transfers": tuple(transfers.values())})
    topology, tau = Topology(full), scenario.frame.tau_s
    out = {tid: (0, 0.0, 0.0) for tid in transfers}
    source: dict[str, list[float]] = defaultdict(list)
    sink: dict[str, list[float]] = defaultdict(list)
    for p in plan.packets:
        tr = transfers.get(p.transfer)
        if tr is None:
            raise SettlementError(f"the plan names transfer '{p.transfer}', not in the scenario")
        e = tr.voltage_v * tr.current_a * tau
        source[p.transfer].append(e)
        sink[p.transfer].append(
            e - topology.packet_loss_j(p.route, tr.voltage_v, tr.current_a, tau)
        )
    for tid in source:
        out[tid] = (len(source[tid]), math.fsum(source[tid]), math.fsum(sink[tid]))
    return out


def _check_delivered(delivered_j: Mapping[str, float], energy: Mapping[str, tuple]) -> None:
    for tid, value in delivered_j.items():
        if tid not in energy:
            raise SettlementError(f"metered energy for transfer '{tid}', not in the scenario")
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
            raise SettlementError(f"transfer {tid}: delivered energy {value!r} J must be >= 0")
    missing = [tid for tid, (packets, _, _) in energy.items() if packets and tid not in delivered_j]
    if missing:
        raise SettlementError(f"no metered energy for planned transfer(s) {', '.join(missing)}")


def _settle_transfer(
    tid: str,
    trade: Trade | None,
    packets: int,
    source_j: float,
    sink_j: float,
    delivered: float,
    buyer_price: float,
    config: SettlementConfig,
) -> TransferSettlement:
    if packets == 0 or delivered >= sink_j * (1.0 - config.tolerance):
        credited, short_j, short_packets = float(packets), 0.0, 0.0
    else:
        credited = packets * delivered / sink_j
        short_j, short_packets = sink_j - delivered, packets - credited
    compensation = (
        short_packets * buyer_price + short_j * config.grid_retail_price_per_j if trade else 0.0
    )
    return TransferSettlement(
        transfer=tid,
        seller=trade.seller if trade else None,
        buyer=trade.buyer if trade else None,
        planned_packets=packets,
        planned_source_j=source_j,
        planned_sink_j=sink_j,
        delivered_j=float(delivered),
        delivered_packets=credited,
        shortfall_j=short_j,
        shortfall_packets=short_packets,
        compensation=compensation,
    )


def _participants(
    market: MarketResult, results: list[TransferSettlement], ledger: list[LedgerEntry]
) -> tuple[ParticipantSettlement, ...]:
    delivered: dict[str, list[float]] = defaultdict(list)
    for t in results:
        for who in (t.seller, t.buyer):
            if who:
                delivered[who].append(t.delivered_packets)
    out = []
    for s in market.participants:
        got = math.fsum(delivered[s.id])
        # a healthy frame credits exactly the allocated packets: the ratio is exactly 1.0
        paid = s.payment * (got / s.packets) if s.packets else 0.0
        if paid > 0:
            ledger.append(LedgerEntry(s.id, OPERATOR, paid, "market"))
        elif paid < 0:
            ledger.append(LedgerEntry(OPERATOR, s.id, -paid, "market"))
        compensation = math.fsum(
            e.amount if e.payee == s.id else -e.amount
            for e in ledger
            if e.reason == "compensation" and s.id in (e.payer, e.payee)
        )
        out.append(
            ParticipantSettlement(
                id=s.id,
                side=s.side,
                terminal=s.terminal,
                allocated=s.packets,
                delivered_packets=got,
                market_payment=s.payment,
                paid=paid,
                compensation=compensation,
                net=_balance(ledger, s.id),
            )
        )
    return tuple(out)


def _balance(ledger: Iterable[LedgerEntry], party: str) -> float:
    return math.fsum(
        (e.amount if e.payee == party else 0.0) - (e.amount if e.payer == party else 0.0)
        for e in ledger
    )


# --- totals over a run ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PartyTotal:
    id: str
    frames: int = 0  # frames in which it was allocated packets
    allocated: int = 0
    delivered_packets: float = 0.0
    received: float = 0.0
    paid: float = 0.0

    @property
    def net(self) -> float:
        return self.received - self.paid


@dataclass(frozen=True, slots=True)
class TransferTotal:
    transfer: str
    frames: int = 0
    planned_packets: int = 0
    planned_sink_j: float = 0.0
    delivered_j: float = 0.0
    shortfall_j: float = 0.0


@dataclass(frozen=True)
class RunTotals:
    parties: tuple[PartyTotal, ...]  # participants in market order, the operator last
    transfers: tuple[TransferTotal, ...]


def run_totals(frames: Iterable[FrameSettlement]) -> RunTotals:
    """Totals per participant (money, packets) and per transfer id (energy)."""
    parties: dict[str, _Sums] = defaultdict(_Sums)
    transfers: dict[str, _Sums] = defaultdict(_Sums)
    for f in frames:
        for p in f.participants:
            parties[p.id].add(
                frames=int(p.allocated > 0),
                allocated=p.allocated,
                delivered_packets=p.delivered_packets,
            )
        for e in f.ledger:
            parties[e.payer].add(paid=e.amount)
            parties[e.payee].add(received=e.amount)
        for t in f.transfers:
            transfers[t.transfer].add(
                frames=1,
                planned_packets=t.planned_packets,
                planned_sink_j=t.planned_sink_j,
                delivered_j=t.delivered_j,
                shortfall_j=t.shortfall_j,
            )
    order = [pid for pid in parties if pid != OPERATOR] + [OPERATOR] * (OPERATOR in parties)
    return RunTotals(
        parties=tuple(PartyTotal(pid, **parties[pid].fields()) for pid in order),
        transfers=tuple(TransferTotal(tid, **acc.fields()) for tid, acc in transfers.items()),
    )


class _Sums:
    """Named counts, and named amounts summed exactly (``math.fsum``) at the end."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = defaultdict(int)
        self.amounts: dict[str, list[float]] = defaultdict(list)

    def add(self, **values: float) -> None:
        for key, value in values.items():
            if isinstance(value, int):
                self.counts[key] += value
            else:
                self.amounts[key].append(value)

    def fields(self) -> dict[str, Any]:
        return {**self.counts, **{k: math.fsum(v) for k, v in self.amounts.items()}}
