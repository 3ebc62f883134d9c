"""The market stage: offers and bids into priced trades and the planner's transfers.

Welfare-maximising matching as a min-cost flow on the router network (``network``,
``flow``), divided by VCG or Nash bargaining (``mechanisms``), decomposed into trades
(``decompose``) and turned into transfers (``transfers``). Pure math: no I/O.
"""

from scheduler.market.clearing import MarketResult, Settlement, clear_market
from scheduler.market.decompose import Trade
from scheduler.market.errors import MarketError
from scheduler.market.mechanisms import MECHANISMS, Mechanism
from scheduler.market.network import MarketNetwork, MarketPacket, Participant, build_network
from scheduler.market.transfers import market_transfers, with_market_transfers

__all__ = [
    "MECHANISMS",
    "MarketError",
    "MarketNetwork",
    "MarketPacket",
    "MarketResult",
    "Mechanism",
    "Participant",
    "Settlement",
    "Trade",
    "build_network",
    "clear_market",
    "market_transfers",
    "with_market_transfers",
]
