"""Every matching rule by name: the one list ``clear_market``, ``ppr market``, the frame
stage and the web terminal choose from (docs/market.md writes each rule out)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from scheduler.market.combined import combined_offer_pass
from scheduler.market.errors import MarketError
from scheduler.market.green import PassRule
from scheduler.market.maxvolume import max_volume_pass
from scheduler.market.mechanisms import optimum_pass, vcg_pass
from scheduler.market.priority import price_priority_pass

Mechanism = Literal["vcg", "nash", "price-priority", "max-volume", "combined-offer"]
# who sets the money: VCG's Clarke pivot and Nash's split price each participant over
# the welfare optimum; the other rules price each trade as they make it
Pricing = Literal["clarke", "nash", "trade"]


@dataclass(frozen=True)
class Rule:
    name: Mechanism
    summary: str  # one line: ppr market --help, the web terminal's list of mechanisms
    clear: PassRule
    pricing: Pricing

    @property
    def optimal(self) -> bool:
        """Its allocation is the welfare optimum (the reference of every welfare gap)."""
        return self.pricing != "trade"


_ALL = (
    Rule("vcg", "welfare optimum; each gains what it adds to welfare (truthful)",
         vcg_pass, "clarke"),
    Rule("nash", "welfare optimum; the gain split by Nash bargaining (budget balanced)",
         optimum_pass, "nash"),
    Rule("price-priority", "highest bid meets lowest offer first, price-time priority",
         price_priority_pass, "trade"),
    Rule("max-volume", "one uniform price that clears the most packets",
         max_volume_pass, "trade"),
    Rule("combined-offer", "pairs by highest bid - ask - transport cost, within line and "
         "SOP room", combined_offer_pass, "trade"),
)  # fmt: skip
RULES: dict[str, Rule] = {r.name: r for r in _ALL}
MECHANISMS: tuple[Mechanism, ...] = tuple(r.name for r in _ALL)


def rule_named(name: str) -> Rule:
    """The rule called ``name``, or a one-line error listing the names."""
    if name not in RULES:
        raise MarketError("--mechanism", f"unknown '{name}' (choose {', '.join(MECHANISMS)})")
    return RULES[name]
