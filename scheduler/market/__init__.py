"""The market stage: offers and bids into priced trades and the planner's transfers.

Every rule by name in ``MECHANISMS`` (``registry``): the welfare optimum as a min-cost
flow on the router network (``network``, ``flow``) divided by VCG or Nash bargaining
(``mechanisms``), price-priority (``priority``), max-volume (``maxvolume``) and
combined-offer (``combined``), each after the green pass (``green``); trades into
transfers (``transfers``). Pure math: no I/O.
"""

from scheduler.market.clearing import MarketResult, Settlement, clear_market
from scheduler.market.decompose import Trade, certifiable_green_j
from scheduler.market.errors import MarketError
from scheduler.market.network import MarketNetwork, MarketPacket, Participant, build_network
from scheduler.market.registry import MECHANISMS, RULES, Mechanism, Rule, rule_named
from scheduler.market.transfers import market_transfers, with_market_transfers

__all__ = [
    "MECHANISMS",
    "RULES",
    "MarketError",
    "MarketNetwork",
    "MarketPacket",
    "MarketResult",
    "Mechanism",
    "Participant",
    "Rule",
    "Settlement",
    "Trade",
    "build_network",
    "certifiable_green_j",
    "clear_market",
    "market_transfers",
    "rule_named",
    "with_market_transfers",
]
