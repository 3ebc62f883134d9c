"""The day-ahead stage: one hour's P2P trades as the frame's transfers.

A frame carries the hour's net flows. Within an hour a prosumer may both sell and buy (in
different quarter-hours, or as a relay that buys from one peer and sells to another), so
the hour's trades are first netted (``net_flows``): opposite trades of a pair cancel,
cycles carry nothing, and what remains is followed from each net seller through any
relays to the net buyers it reaches. Each net seller -> net buyer flow is one trade of
the frame; net sellers and net buyers are disjoint.

Prosumers are mapped onto the bench's terminals in id order: net sellers round-robin onto
the source and storage terminals, net buyers onto the load terminals. The flows between
one pair of terminals become one transfer, with packets in proportion to its kWh (the
largest gets ``max_packets``: the bench is a scale model of the VPP). After the frame,
the stage compares what was delivered with what was traded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import TYPE_CHECKING, Any

from bench import Scenario, Topology
from bench.errors import ScenarioError
from bench.loader import parse_dict
from router.controller.stages import StageOutput

if TYPE_CHECKING:
    from router.controller.outcome import FrameOutcome
    from router.settlement import FrameSettlement


@dataclass(frozen=True)
class HourTrade:
    seller: str
    buyer: str
    kwh: float


def net_flows(trades: tuple[HourTrade, ...], dust: float = 1e-9) -> tuple[HourTrade, ...]:
    """The hour's trades as flows from net sellers to net buyers (see the module doc)."""
    flow: dict[tuple[str, str], float] = {}
    for t in trades:
        if t.seller != t.buyer:
            flow[t.seller, t.buyer] = flow.get((t.seller, t.buyer), 0.0) + t.kwh
    for a, z in list(flow):  # opposite trades of a pair cancel
        if (a, z) in flow and (z, a) in flow:
            both = min(flow[a, z], flow[z, a])
            flow[a, z] -= both
            flow[z, a] -= both
    flow = {k: v for k, v in flow.items() if v > dust}
    while (cycle := _cycle(flow)) is not None:  # a cycle moves nothing anywhere
        least = min(flow[k] for k in cycle)
        for k in cycle:
            flow[k] -= least
        flow = {k: v for k, v in flow.items() if v > dust}
    excess: dict[str, float] = {}
    for (a, z), v in flow.items():
        excess[a] = excess.get(a, 0.0) + v
        excess[z] = excess.get(z, 0.0) - v
    out: dict[tuple[str, str], float] = {}
    for seller in sorted(p for p, v in excess.items() if v > dust):
        while excess[seller] > dust:
            path = [seller]
            while (nxt := next((z for (a, z) in flow if a == path[-1]), None)) is not None:
                path.append(nxt)
                if excess[nxt] < -dust:
                    break
            buyer = path[-1]
            if len(path) == 1 or excess[buyer] >= -dust:
                break  # round-off left: nothing more to follow
            arcs = list(pairwise(path))
            push = min(excess[seller], -excess[buyer], *(flow[k] for k in arcs))
            for k in arcs:
                flow[k] -= push
                if flow[k] <= dust:
                    del flow[k]
            excess[seller] -= push
            excess[buyer] += push
            out[seller, buyer] = out.get((seller, buyer), 0.0) + push
    return tuple(HourTrade(a, z, v) for (a, z), v in sorted(out.items()) if v > dust)


def _cycle(flow: dict[tuple[str, str], float]) -> list[tuple[str, str]] | None:
    """Some cycle of positive flows, as its arcs, or None."""
    succ: dict[str, list[str]] = {}
    for a, z in flow:
        succ.setdefault(a, []).append(z)
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in sorted(succ):
        if state.get(root):
            continue
        path = [root]
        state[root] = 1
        stack = [iter(succ.get(root, []))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
                continue
            if state.get(nxt) == 1:
                return list(pairwise([*path[path.index(nxt) :], nxt]))
            if not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(succ.get(nxt, [])))
    return None


@dataclass(frozen=True)
class DayAheadStage:
    trades: tuple[HourTrade, ...]
    hour: int
    max_packets: int = 20
    voltage_v: float = 48.0
    current_a: float = 8.0
    name: str = "dayahead"

    def __post_init__(self) -> None:
        both = {t.seller for t in self.trades} & {t.buyer for t in self.trades}
        if both:
            raise ValueError(
                f"prosumers {sorted(both)} both sell and buy: give the stage net_flows(trades)"
            )

    def terminals(self, base: Scenario) -> dict[str, str]:
        """Prosumer id -> bench terminal."""
        sources = [t.id for t in base.terminals if t.kind in ("source", "storage")]
        loads = [t.id for t in base.terminals if t.kind == "load"]
        if not sources or not loads:
            raise ScenarioError("terminals", "the day-ahead stage needs a source and a load")
        sellers = sorted({t.seller for t in self.trades})
        buyers = sorted({t.buyer for t in self.trades})
        out = {p: sources[k % len(sources)] for k, p in enumerate(sellers)}
        out |= {p: loads[k % len(loads)] for k, p in enumerate(buyers)}
        return out

    def groups(self, base: Scenario) -> list[tuple[str, str, float, list[HourTrade]]]:
        """Trades by terminal pair (source, sink, kWh, trades): one transfer each, since
        prosumers mapped onto one terminal share it."""
        where = self.terminals(base)
        out: dict[tuple[str, str], list[HourTrade]] = {}
        for t in self.trades:
            out.setdefault((where[t.seller], where[t.buyer]), []).append(t)
        return [(a, z, sum(t.kwh for t in ts), ts) for (a, z), ts in out.items()]

    def prepare(self, index: int, frame: int, base: Scenario, topology: Topology) -> StageOutput:
        groups = self.groups(base)
        top = max(kwh for _, _, kwh, _ in groups)
        transfers = [
            {
                "id": f"DA{self.hour}-{k}",
                "source": a,
                "sink": z,
                "packets": max(1, round(self.max_packets * kwh / top)),
                "voltage_v": self.voltage_v,
                "current_a": self.current_a,
                "value": 1.0,
            }
            for k, (a, z, kwh, _) in enumerate(groups)
        ]
        data = base.model_dump(mode="json", exclude_none=True)
        requested, _ = parse_dict(data | {"transfers": transfers, "offers": [], "bids": []})
        rows = [
            {"transfer": t["id"], "source": a, "sink": z, "traded_kwh": kwh,
             "packets": t["packets"], "trades": [[x.seller, x.buyer, x.kwh] for x in ts]}
            for t, (a, z, kwh, ts) in zip(transfers, groups, strict=True)
        ]  # fmt: skip
        return StageOutput(requested, record={"hour": self.hour, "transfers": rows})

    def settled(self, output: StageOutput, settlement: FrameSettlement) -> Mapping[str, Any]:
        got = {t.transfer: t for t in settlement.transfers}
        rows = []
        for row in output.record["transfers"]:
            s = got.get(row["transfer"])
            rows.append(
                {
                    "transfer": row["transfer"],
                    "source": row["source"],
                    "sink": row["sink"],
                    "traded_kwh": row["traded_kwh"],
                    "packets": row["packets"],
                    "delivered_packets": s.delivered_packets if s else 0.0,
                    "delivered_j": s.delivered_j if s else 0.0,
                }
            )
        return {"hour": self.hour, "transfers": rows}

    def summary(self, outcomes: Sequence[FrameOutcome]) -> list[str]:
        lines = [f"  day-ahead hour {self.hour}: {len(self.trades)} trades"]
        last = next((o.stage for o in reversed(outcomes) if o.stage), None)
        if last and "transfers" in last:
            for r in last["transfers"]:
                lines.append(
                    f"    {r['source']} -> {r['sink']}: traded {r['traded_kwh']:.3f} kWh as "
                    f"{r['packets']} packets, delivered {r['delivered_packets']:g}"
                )
        return lines
