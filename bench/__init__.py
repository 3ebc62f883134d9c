"""The bench description: routers, terminals, lines, SOPs, transfers and quotes.

Every layer imports this package; it imports none of them.
"""

from bench.errors import BenchError, RouteError, ScenarioError
from bench.loader import bundled_path, load_scenario, load_with_topology, parse_dict, parse_text
from bench.models import (
    Bid,
    Frame,
    Line,
    Offer,
    PortRef,
    Quote,
    Router,
    Scenario,
    Sop,
    Terminal,
    Transfer,
)
from bench.topology import Hop, Resource, Topology

__all__ = [
    "BenchError",
    "Bid",
    "Frame",
    "Hop",
    "Line",
    "Offer",
    "PortRef",
    "Quote",
    "Resource",
    "RouteError",
    "Router",
    "Scenario",
    "ScenarioError",
    "Sop",
    "Terminal",
    "Topology",
    "Transfer",
    "bundled_path",
    "load_scenario",
    "load_with_topology",
    "parse_dict",
    "parse_text",
]
