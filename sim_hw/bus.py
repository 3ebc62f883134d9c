"""The DC bus: which circuits the routers' closed gates make, and what flows in them.

The twin calls ``DcBus.run(t0, t1)``. Every router contributes the conduction windows of
its gates (each slot after its guard, on the router's own clock); the sweep cuts time at
every window edge, and in each piece follows every circuit from its source to its end.

Circuit model (the planning model of docs/design.md, made physical):

* the source (a terminal, or a router's store releasing a held packet) drives the
  packet's current ``I`` (its header's current limit) at the packet voltage ``V``: a
  power-packet source is a current-controlled converter;
* the load is a constant-current sink at ``I``; it takes whatever voltage reaches it;
* a line or terminal access of resistance ``R`` drops ``I*R`` and dissipates ``I^2*R``;
* an SOP is a converter that passes ``I`` and dissipates ``loss_coeff * V * I``;
* a router's store absorbs what arrives and later releases it, over its own slot's
  conduction time, at the same current: at one power, what it held when the slot's
  window opened divided by the window's length.

So a packet delivers ``V*I*tau`` minus the planning model's losses when every router is
on time. A packet flows only while every gate on its path is closed: routers whose
slots start ``d`` apart (within the guard) shorten it by ``d``, and a router whose slots
the controller stretched (``arm_rate_ppb``) lengthens or shortens it. The twin measures
that apart: per frame, each router's sink meters' *timing shortfall*, the circuit
model's energy (every gate on time, conduction ``tau``) minus what they metered.

A piece of a circuit whose gates belong to different packets (a router's clock off by
more than the guard, a gate stuck closed) is a collision: counted at every router on
it, alarmed, and those routers open their gates for the rest of the slot, so both
packets are lost. A circuit that does not reach a load is an open circuit: no current.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from bench import Scenario, Terminal, Topology
from firmware_bridge.headers import STORE_PORT, HeaderRefusal, KeyRing, open_inner
from sim_hw.router import Gate, RouterModel, Run


@dataclass(frozen=True, slots=True)
class Link:
    """What sits behind a router port: a terminal, or a line / SOP to another port."""

    resource: str
    kind: str  # access / line / sop
    resistance: float
    max_current: float
    max_power: float
    loss_coeff: float
    terminal: Terminal | None = None
    far: tuple[str, int] | None = None  # (router, port) at the other end


@dataclass
class BusFaults:
    """Physical faults currently injected (the twin keeps them visible in counters)."""

    stuck_open: set[tuple[str, int]] = field(default_factory=set)
    stuck_closed: set[tuple[str, int]] = field(default_factory=set)
    tripped: set[str] = field(default_factory=set)  # resource ids


class DcBus:
    def __init__(
        self,
        scenario: Scenario,
        topology: Topology,
        routers: Mapping[str, RouterModel],
        meters: Mapping[str, KeyRing],
        terminal_wire: Mapping[str, int],
        trip_margin: float = 1.0,
    ) -> None:
        self.routers = routers
        self.meters = meters  # sink terminal id -> its meter's inner key ring
        self.terminal_wire = terminal_wire
        self.faults = BusFaults()
        self.trip_margin = trip_margin
        self.links: dict[tuple[str, int], Link] = {}
        for res in topology.resources.values():
            for i, end in enumerate(res.ends):
                other = res.ends[1 - i] if len(res.ends) == 2 else None
                self.links[end.router, end.port] = Link(
                    res.id,
                    res.kind,
                    res.resistance_ohm,
                    res.max_current_a,
                    res.max_power_w,
                    res.loss_coeff,
                    topology.terminals.get(res.id),
                    (other.router, other.port) if other else None,
                )
        self._inner: dict[tuple[int, int, bytes, str], tuple[int, int] | None] = {}
        self.pieces = 0  # evaluated pieces of time (for the benchmark)

    # --- the sweep --------------------------------------------------------------------

    def run(self, t0: float, t1: float) -> None:
        edges: list[tuple[float, int, int]] = []
        windows: list[tuple[RouterModel, Run, int]] = []
        ending: list[int] = []
        for r in self.routers.values():
            for a, b, run, slot, ends in r.windows(t0, t1):
                k = len(windows)
                windows.append((r, run, slot))
                edges.append((a, 1, k))
                edges.append((b, 0, k))
                if ends:
                    ending.append(k)
        if not windows:
            return
        edges.sort()
        active: dict[int, tuple[RouterModel, Run, int]] = {}
        i, n = 0, len(edges)
        while i < n:
            t = edges[i][0]
            while i < n and edges[i][0] == t:
                _, starts, k = edges[i]
                if starts:
                    active[k] = windows[k]
                else:
                    active.pop(k, None)
                i += 1
            if active and i < n:
                self._piece(active.values(), t, edges[i][0])
        for k in ending:  # a gate that never conducted in its whole window
            r, run, slot = windows[k]
            if (run.frame, slot) in r.aborted:
                continue
            for gate in run.gates[slot].values():
                tags = run.counted
                if (gate.slot, gate.index, True) not in tags and (
                    gate.slot,
                    gate.index,
                    False,
                ) not in tags:
                    self._once(r, run, gate, "open_circuits")

    def _piece(self, active, t: float, t_next: float) -> None:
        d = (t_next - t) * 1e-6
        if d <= 0:
            return
        self.pieces += 1
        at: dict[str, tuple[RouterModel, Run, int, dict[int, Gate]]] = {}
        for r, run, slot in active:
            if (run.frame, slot) not in r.aborted:
                at[r.id] = (r, run, slot, run.gates[slot])
        collided = self._stuck_closed(at)
        for r, run, slot, gates in list(at.values()):
            for gate in gates.values():
                if self._is_head(r, gate):
                    self._circuit(at, r, run, slot, gate, d, collided)

    def _is_head(self, r: RouterModel, gate: Gate) -> bool:
        if gate.in_port == STORE_PORT:
            return True
        link = self.links.get((r.id, gate.in_port))
        return link is not None and link.terminal is not None and link.terminal.can_send

    def _stuck_closed(self, at) -> set[str]:
        """Routers where a stuck-closed gate joins a port nobody scheduled to the bus."""
        out = set()
        for rid, port in self.faults.stuck_closed:
            if rid in at:
                gates = at[rid][3].values()
                if all(port not in (g.in_port, g.out_port) for g in gates):
                    out.add(rid)
                    r, run, _, _ = at[rid]
                    self._once(r, run, next(iter(gates)), "gate_faults")
        return out

    # --- one circuit ------------------------------------------------------------------

    def _walk(self, at, r0: RouterModel, run0: Run, slot0: int, head: Gate):
        """Follow closed gates from ``head``: the hops, the resources before each hop,
        and where the circuit ends (a sink terminal's link, a store, or None: open)."""
        hops: list[tuple[RouterModel, Run, int, Gate]] = [(r0, run0, slot0, head)]
        before: list[list[Link]] = [[]]
        if head.in_port != STORE_PORT:
            before[0].append(self.links[r0.id, head.in_port])
        r, gate = r0, head
        while True:
            if gate.out_port == STORE_PORT:
                return hops, before, ("store", None)
            link = self.links.get((r.id, gate.out_port))
            if link is None:
                return hops, before, None
            if link.terminal is not None:
                return hops, before, ("sink", link)
            assert link.far is not None
            nxt = at.get(link.far[0])
            nxt_gate = nxt[3].get(link.far[1]) if nxt else None
            if nxt is None or nxt_gate is None:
                return hops, before, None
            before.append([link])
            r, gate = nxt[0], nxt_gate
            hops.append((r, nxt[1], nxt[2], gate))

    def _circuit(self, at, r0: RouterModel, run0: Run, slot0: int, head: Gate, d, collided):
        amps, volts = head.current, head.voltage
        hops, before, end = self._walk(at, r0, run0, slot0, head)
        if any(h[3].inner != head.inner for h in hops) or any(h[0].id in collided for h in hops):
            return self._abort(hops, "collisions", "collision")
        if end is None or (end[0] == "sink" and not end[1].terminal.can_receive):
            return None  # no current; counted when the window ends without any
        stuck = self.faults.stuck_open
        bad = [h for h in hops if {(h[0].id, h[3].in_port), (h[0].id, h[3].out_port)} & stuck]
        for h in bad:
            self._once(h[0], h[1], h[3], "gate_faults")
        if bad:
            return None
        links = [x for part in before for x in part] + ([end[1]] if end[0] == "sink" else [])
        margin = self.trip_margin
        for x in links:
            if (
                x.resource in self.faults.tripped
                or amps > x.max_current * margin
                or (volts * amps > x.max_power * margin)
            ):
                return self._abort(hops, "overcurrent_trips", "overcurrent")
        leg = (slot0, head.index)
        if head.in_port == STORE_PORT:
            held = r0.store.get(head.inner)
            if held is None:
                return None
            power = run0.released.get(leg)
            if power is None:  # what it held when the window opened, over the window
                power = run0.released[leg] = held / ((run0.slot_t - run0.guard_t) * 1e-6)
            r0.store[head.inner] = max(0.0, held - power * d)
        else:
            power = volts * amps
        lost = 0.0  # W along the way
        for k, (r, run, _, gate) in enumerate(hops):
            loss = sum(_loss(x, volts, amps) for x in before[k])
            power -= loss
            lost += loss
            energy, v_here = power * d, power / amps
            r.meter(gate.in_port, True, energy, v_here, amps, run, gate)
            r.meter(gate.out_port, False, energy, v_here, amps, run, gate)
        r, run, _, gate = hops[-1]
        if end[0] != "store":
            loss = _loss(end[1], volts, amps)
            power -= loss
            lost += loss
        if leg not in run0.legs:  # this leg's first piece: what the circuit model says
            run0.legs.add(leg)
            tau = run0.tau_s  # every gate on time, for tau
            at_head = (
                r0.store_nominal.get(head.inner, 0.0)
                if head.in_port == STORE_PORT
                else (volts * amps * tau)
            )
            nominal = at_head - lost * tau
            if end[0] == "store":
                r.store_nominal[gate.inner] = nominal
            else:
                r.frame_shortfall[run.frame] = r.frame_shortfall.get(run.frame, 0.0) + nominal
        if end[0] == "store":
            r.store[gate.inner] = r.store.get(gate.inner, 0.0) + power * d
            return None
        r.frame_shortfall[run.frame] = r.frame_shortfall.get(run.frame, 0.0) - power * d
        self._deliver(r, run, gate, end[1].terminal, power * d)
        return None

    def _deliver(self, r: RouterModel, run: Run, gate: Gate, sink: Terminal, energy: float) -> None:
        key = (run.frame, gate.slot, gate.inner, sink.id)
        first = key not in self._inner
        if first:
            try:
                got = open_inner(
                    self.meters[sink.id],
                    gate.inner,
                    epoch=gate.epoch,
                    frame=run.frame,
                    slot=gate.slot,
                )
                self._inner[key] = (got.sink, got.fields.transfer)
            except HeaderRefusal:
                self._inner[key] = None
                r.counters["inner_rejected"] += 1
        who = self._inner[key]
        if who is not None:
            r.attribute(run.frame, who[0], who[1], energy, first)

    def _abort(self, hops, counter: str, alarm: str) -> None:
        for r, run, slot, _ in hops:
            if (run.frame, slot) not in r.aborted:
                r.aborted.add((run.frame, slot))
                r.counters[counter] += 1
            r.alarms.add(alarm)

    def _once(self, r: RouterModel, run: Run, gate: Gate, counter: str) -> None:
        tag = (gate.slot, gate.index, counter)
        if tag not in run.counted:
            run.counted.add(tag)  # type: ignore[arg-type]
            r.counters[counter] += 1
            if counter == "open_circuits":
                r.alarms.add("open_circuit")
            elif counter == "gate_faults":
                r.alarms.add("gate_fault")


def _loss(link: Link, volts: float, amps: float) -> float:
    """Power one packet loses crossing ``link`` (W)."""
    if link.kind == "sop":
        return link.loss_coeff * volts * amps
    return amps * amps * link.resistance
