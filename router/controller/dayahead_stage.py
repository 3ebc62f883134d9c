"""The day-ahead stage: one hour's P2P trades as the frame's transfers.

Prosumers are mapped onto the bench's terminals in id order: sellers round-robin onto
the source and storage terminals, buyers onto the load terminals. Each trade of the hour
becomes a transfer from its seller's terminal to its buyer's, with packets in proportion
to its kWh (the largest trade gets ``max_packets``: the bench is a scale model of the
VPP). After the frame, the stage compares what was delivered with what was traded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class DayAheadStage:
    trades: tuple[HourTrade, ...]
    hour: int
    max_packets: int = 20
    voltage_v: float = 48.0
    current_a: float = 8.0
    name: str = "dayahead"

    def terminals(self, base: Scenario) -> dict[str, str]:
        """Prosumer id -> bench terminal."""
        sources = [t.id for t in base.terminals if t.kind in ("source", "storage")]
        loads = [t.id for t in base.terminals if t.kind == "load"]
        if not sources or not loads:
            raise ScenarioError("terminals", "the day-ahead stage needs a source and a load")
        sellers = sorted({t.seller for t in self.trades})
        buyers = sorted({t.buyer for t in self.trades} - set(sellers))
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
