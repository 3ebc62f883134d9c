"""The MEC stage: each frame, energy for the edge-computing servers of ``[mec]``.

Per frame (docs/mec.md): the request volumes are drawn (frame number N, as the journal
and MQTT number it, uses the draw ``ppr allocate --frame N`` shows, whichever run it
belongs to), servers and sources are matched by deferred
acceptance, and the allocation is the pick rule's point computed exactly (three
lexicographic LPs in HiGHS, warm from the last frame's basis; NSGA-II, ~0.5 s, is for
``ppr allocate``, not the frame loop). Each matched pair's energy becomes whole packets
(``scheduler.mec.packets``: floor, then one more where the limits allow) of one transfer
``mec-<server>`` on the pair's least-loss route, beside the scenario's own transfers.
After the frame, each server's metered energy gives its satisfaction: journaled, summed
up at the end of the run, published on MQTT (``stage/mec``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from bench import Scenario, Topology, Transfer
from router.controller.stages import StageOutput
from scheduler.mec.allocation import AllocationLp, Pair, delivered, objectives
from scheduler.mec.instance import MecInstance, demands_of, network_of
from scheduler.mec.matching import Proposer, deferred_acceptance, pairs_of, preferences
from scheduler.mec.packets import routers_crossed, whole_packets

if TYPE_CHECKING:
    from router.controller.outcome import FrameOutcome
    from router.settlement import FrameSettlement

PACKET_VALUE = 1.0  # per packet: every MEC packet is worth the same to the planner
LP_CACHE = 8  # matchings whose LPs are kept warm


@dataclass
class MecStage:
    proposer: Proposer = "servers"
    name: str = "mec"
    _network: tuple[tuple[object, ...], MecInstance] | None = field(default=None, repr=False)
    _crossed: dict[Pair, list[int]] = field(default_factory=dict, repr=False)
    _lps: dict[tuple[Pair, ...], AllocationLp] = field(default_factory=dict, repr=False)

    def network(self, base: Scenario, topology: Topology) -> MecInstance:
        """Routes and losses: computed once, again only if the bench itself changed
        (commands add transfers, never lines)."""
        key = (base.mec, base.routers, base.terminals, base.lines, base.sops, base.frame)
        if self._network is None or any(
            a is not b for a, b in zip(self._network[0], key, strict=True)
        ):
            self._network = (key, network_of(base, topology))
            self._crossed = routers_crossed(self._network[1])
            self._lps.clear()
        return self._network[1]

    def allocate(self, inst: MecInstance) -> tuple[list[Pair], np.ndarray]:
        """The matched pairs and the pick rule's point over them."""
        pairs = pairs_of(deferred_acceptance(preferences(inst), self.proposer))
        key = tuple(pairs)
        lp = self._lps.pop(key, None)
        if lp is None:
            lp = AllocationLp(inst, pairs)
        else:
            lp.set_demand(inst.demand_j)
        self._lps[key] = lp  # most recent last
        while len(self._lps) > LP_CACHE:
            del self._lps[next(iter(self._lps))]
        return pairs, lp.pick_point()

    def prepare(self, index: int, frame: int, base: Scenario, topology: Topology) -> StageOutput:
        assert base.mec is not None
        began = time.perf_counter()
        net = self.network(base, topology)
        inst = replace(net, demand_j=demands_of(base, frame))  # keyed by its number
        pairs, x = self.allocate(inst)
        servers = base.mec.servers
        packet_j = np.asarray(
            [
                topology.terminals[servers[j].terminal].voltage_v
                * servers[j].current_a
                * base.frame.tau_s
                for _, j in pairs
            ]
        )
        packets = whole_packets(inst, pairs, x, packet_j, self._crossed)
        allocation_ms = (time.perf_counter() - began) * 1e3
        got = delivered(inst, pairs, x)
        taken = {t.id for t in base.transfers}
        transfers, rows = [], {}
        for i, (k, j) in enumerate(pairs):
            server = servers[j]
            tid = _transfer_id(server.terminal, j, taken)
            lossy = 1.0 - float(inst.loss[k, j])
            rows[server.terminal] = {
                "source": inst.sources[k],
                "transfer": tid,
                "demand_j": float(inst.demand_j[j]),
                "sent_j": float(x[i]),
                "allocated_j": float(got[j]),  # the allocation's delivered energy
                "packets": int(packets[i]),
                "planned_j": float(packets[i] * packet_j[i] * lossy),  # its whole packets'
            }
            if packets[i] > 0:
                transfers.append(
                    Transfer(
                        id=tid,
                        source=inst.sources[k],
                        sink=server.terminal,
                        packets=int(packets[i]),
                        voltage_v=topology.terminals[server.terminal].voltage_v,
                        current_a=server.current_a,
                        value=PACKET_VALUE,
                        paths=(inst.routes[(k, j)],),
                    )
                )
        for j, server in enumerate(servers):  # unmatched: nothing planned
            rows.setdefault(
                server.terminal,
                {"source": None, "transfer": None, "demand_j": float(inst.demand_j[j]),
                 "sent_j": 0.0, "allocated_j": 0.0, "packets": 0, "planned_j": 0.0},
            )  # fmt: skip
        o = objectives(inst, pairs, x)
        requested = base.model_copy(update={"transfers": (*base.transfers, *transfers)})
        return StageOutput(
            requested,
            record={
                "proposer": self.proposer,
                "allocation_ms": allocation_ms,
                "mean_satisfaction": o.mean_satisfaction,
                "min_satisfaction": o.min_satisfaction,
                "loss_j": o.loss_j,
                "servers": rows,
            },
        )

    def settled(self, output: StageOutput, settlement: FrameSettlement) -> Mapping[str, Any]:
        """Each server's metered energy and satisfaction min(1, metered / demand)."""
        metered = {t.transfer: t.delivered_j for t in settlement.transfers}
        servers = {}
        for name, row in output.record["servers"].items():
            got = metered.get(row["transfer"], 0.0) if row["transfer"] else 0.0
            demand = row["demand_j"]
            servers[name] = {
                **row,
                "delivered_j": got,
                "satisfaction": min(1.0, got / demand) if demand > 0 else 1.0,
            }
        sat = [s["satisfaction"] for s in servers.values()]
        return {
            "allocation_ms": output.record["allocation_ms"],
            "mean_satisfaction": statistics.fmean(sat),
            "min_satisfaction": min(sat),
            "servers": servers,
        }

    def summary(self, outcomes: Sequence[FrameOutcome]) -> list[str]:
        accounts = [o.stage for o in outcomes if o.stage and "servers" in o.stage]
        if not accounts:
            return []
        took = [a["allocation_ms"] for a in accounts]
        warm = took[1:] or took  # the first frame builds the routes and the LP
        lines = [
            f"  MEC allocation ({self.proposer} propose; pick rule by LP): {len(accounts)} "
            f"frames, the first {took[0]:.1f} ms, then {statistics.median(warm):.2f} ms "
            f"median, {max(warm):.2f} ms max",
            f"  {'server':<12} {'satisfaction mean':>17} {'min':>6} {'demand J':>10} "
            f"{'allocated J':>11} {'metered J':>10}",
        ]
        for name in accounts[0]["servers"]:
            rows = [a["servers"][name] for a in accounts if name in a["servers"]]
            sat = [r["satisfaction"] for r in rows]
            lines.append(
                f"  {name:<12} {statistics.fmean(sat):>17.3f} {min(sat):>6.3f} "
                f"{sum(r['demand_j'] for r in rows):>10.2f} "
                f"{sum(r['allocated_j'] for r in rows):>11.2f} "
                f"{sum(r['delivered_j'] for r in rows):>10.2f}"
            )
        return lines


def _transfer_id(server: str, index: int, taken: set[str]) -> str:
    """``mec-<server>`` (ids hold 40 characters: else ``mec-<index>``), never one of the
    scenario's own transfer ids."""
    tid = f"mec-{server}" if len(server) <= 36 else f"mec-{index}"
    while tid in taken:
        tid = f"_{tid}"
    return tid
