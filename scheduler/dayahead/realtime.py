"""Real-time deviations between VPPs, cleared by VCG on the existing market code.

Forecast errors leave each VPP long (it sells its surplus, asking at least what the grid
pays) or short (it buys, valuing energy at what the grid's imbalance would cost it). The
deviations of one period are a market without a network: one hub node, offers
source -> hub and bids hub -> sink, a ``MarketNetwork`` solved by ``FlowSolver``; VCG
(``vcg_utilities``) makes quoting the true values each VPP's best strategy. Quantities
are whole units of ``unit_kwh``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from scheduler.market.flow import FlowSolver, welfare
from scheduler.market.mechanisms import payments, vcg_utilities
from scheduler.market.network import SINK, SOURCE, MarketNetwork, MarketPacket, Participant


@dataclass(frozen=True)
class Quote:
    vpp: str
    units: int  # > 0: surplus to sell, < 0: deficit to buy
    price: float  # ask (seller) or value (buyer), per unit


@dataclass(frozen=True)
class Clearing:
    quotes: tuple[Quote, ...]
    traded: tuple[int, ...]  # units each quote sells or buys
    utility: tuple[float, ...]
    payment: tuple[float, ...]  # > 0 pays the operator, < 0 is paid
    welfare: float
    elapsed_s: float


def hub_network(quotes: tuple[Quote, ...]) -> MarketNetwork:
    sides = ["offer" if q.units > 0 else "bid" for q in quotes]
    parts = tuple(
        Participant(q.vpp, side, q.vpp, abs(q.units), q.price)  # type: ignore[arg-type]
        for q, side in zip(quotes, sides, strict=True)
    )
    hub = 2
    tail = [SOURCE if s == "offer" else hub for s in sides]
    head = [hub if s == "offer" else SINK for s in sides]
    cost = [q.price if s == "offer" else -q.price for q, s in zip(quotes, sides, strict=True)]
    n = len(quotes)
    return MarketNetwork(
        scenario="realtime",
        packet=MarketPacket(0.0, 0.0, 0.0),
        slots=0,
        participants=parts,
        n_nodes=3,
        tail=np.asarray(tail, dtype=np.int64),
        head=np.asarray(head, dtype=np.int64),
        cap=np.asarray([abs(q.units) for q in quotes], dtype=np.int64),
        cost=np.asarray(cost, dtype=np.float64),
        loss_j=np.zeros(n),
        resource=("",) * n,
        reverse=np.full(n, -1, dtype=np.int64),
    )


def clear_deviations(quotes: tuple[Quote, ...]) -> Clearing:
    start = time.perf_counter()
    quotes = tuple(q for q in quotes if q.units != 0)
    if not quotes:
        return Clearing((), (), (), (), 0.0, time.perf_counter() - start)
    net = hub_network(quotes)
    solver = FlowSolver(net)
    flow = solver.solve()
    total = welfare(net, flow)
    allocated = flow[: net.n_participants]
    utility = vcg_utilities(net, solver, allocated, total)
    pay = payments(net, allocated, utility)
    return Clearing(
        quotes,
        tuple(int(v) for v in allocated),
        tuple(float(v) for v in utility),
        tuple(float(v) for v in pay),
        total,
        time.perf_counter() - start,
    )


def draw_quotes(
    vpps: list[str],
    surplus_kw: np.ndarray,  # (VPPs,) each VPP's scheduled surplus in the period
    buy: float,
    sell: float,
    seed: int,
    unit_kwh: float = 0.1,
) -> tuple[Quote, ...]:
    """Forecast errors (10 % of each VPP's scheduled surplus, at least 0.5 kW, normal),
    quoted at the grid's prices with each VPP's own imbalance premium (up to 30 %)."""
    rng = np.random.default_rng(seed)
    out = []
    for k, vpp in enumerate(vpps):
        error = rng.normal(0.0, max(0.1 * abs(float(surplus_kw[k])), 0.5))
        premium = rng.uniform(0.0, 0.3)
        units = round(error / unit_kwh)
        price = sell * (1 - premium) if units > 0 else buy * (1 + premium)
        out.append(Quote(vpp, units, round(price * unit_kwh, 6)))
    return tuple(out)
