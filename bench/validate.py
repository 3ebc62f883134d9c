"""Cross-checks between entries of a scenario: ids, ports, windows, paths, quotes.

Each check raises ``ScenarioError`` naming the entry by id (``transfers[T7].source``) and
saying what would fix it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from bench.errors import RouteError, ScenarioError
from bench.limits import MAX_PACKET_ENERGY_J
from bench.models import MecServer, MecSource, PortRef, Scenario
from bench.topology import Topology


def check_scenario(scenario: Scenario) -> Topology:
    """Raise ``ScenarioError`` on the first inconsistency; return the topology."""
    _check_unique_ids(scenario)
    _check_ports(scenario)
    topology = Topology(scenario)
    _check_transfers(scenario, topology)
    _check_quotes(scenario)
    _check_twin(scenario)
    _check_mec(scenario, topology)
    return topology


def _check_unique(table_ids: Iterable[tuple[str, str]], namespace: str) -> None:
    seen: dict[str, str] = {}
    for table, entry_id in table_ids:
        if entry_id in seen:
            raise ScenarioError(
                f"{table}[{entry_id}].id",
                f"duplicate id '{entry_id}' (already used by {seen[entry_id]}); "
                f"{namespace} ids must be unique",
            )
        seen[entry_id] = f"{table}[{entry_id}]"


def _check_unique_ids(s: Scenario) -> None:
    network = [("routers", r.id) for r in s.routers]
    network += [("terminals", t.id) for t in s.terminals]
    network += [("lines", x.id) for x in s.lines]
    network += [("sops", x.id) for x in s.sops]
    _check_unique(network, "router, terminal, line and SOP")
    _check_unique([("transfers", t.id) for t in s.transfers], "transfer")
    quotes = [("offers", q.id) for q in s.offers] + [("bids", q.id) for q in s.bids]
    _check_unique(quotes, "offer and bid")


def _check_ports(s: Scenario) -> None:
    routers = {r.id: r for r in s.routers}
    used: dict[tuple[str, int], str] = {}

    def claim(where: str, text: str) -> PortRef:
        ref = PortRef.parse(text)
        router = routers.get(ref.router)
        if router is None:
            raise ScenarioError(where, f"unknown router '{ref.router}' (known: {_names(routers)})")
        if ref.port >= router.ports:
            raise ScenarioError(
                where,
                f"port {ref.port} is out of range: router {ref.router} has ports "
                f"0..{router.ports - 1}",
            )
        key = (ref.router, ref.port)
        if key in used:
            raise ScenarioError(where, f"port {text} is already used by {used[key]}")
        used[key] = where
        return ref

    for t in s.terminals:
        claim(f"terminals[{t.id}].at", t.at)
    for table, links in (("lines", s.lines), ("sops", s.sops)):
        for link in links:
            a = claim(f"{table}[{link.id}].a", link.a)
            b = claim(f"{table}[{link.id}].b", link.b)
            if a.router == b.router:
                raise ScenarioError(
                    f"{table}[{link.id}].b",
                    f"both ends are on router {a.router}; a {table[:-1]} must join two routers",
                )


def _check_transfers(s: Scenario, topology: Topology) -> None:
    terminals = topology.terminals
    for tr in s.transfers:
        where = f"transfers[{tr.id}]"
        src = terminals.get(tr.source)
        if src is None:
            raise ScenarioError(f"{where}.source", f"unknown terminal '{tr.source}'")
        if not src.can_send:
            raise ScenarioError(
                f"{where}.source",
                f"terminal '{tr.source}' is a {src.kind}; "
                "a source must be a source or storage terminal",
            )
        snk = terminals.get(tr.sink)
        if snk is None:
            raise ScenarioError(f"{where}.sink", f"unknown terminal '{tr.sink}'")
        if not snk.can_receive:
            raise ScenarioError(
                f"{where}.sink",
                f"terminal '{tr.sink}' is a {snk.kind}; a sink must be a load or storage terminal",
            )
        if tr.source == tr.sink:
            raise ScenarioError(f"{where}.sink", "source and sink are the same terminal")
        for term in (src, snk):
            if tr.voltage_v > term.voltage_v:
                raise ScenarioError(
                    f"{where}.voltage_v",
                    f"{tr.voltage_v:g} V exceeds terminal {term.id}'s voltage_v "
                    f"({term.voltage_v:g} V)",
                )
            if tr.current_a > term.max_current_a:
                raise ScenarioError(
                    f"{where}.current_a",
                    f"{tr.current_a:g} A exceeds terminal {term.id}'s max_current_a "
                    f"({term.max_current_a:g} A)",
                )
        energy = tr.packet_energy_j(s.frame)
        if energy > MAX_PACKET_ENERGY_J:
            raise ScenarioError(
                f"{where}.current_a",
                f"a packet carries {energy:g} J; a header holds at most "
                f"{MAX_PACKET_ENERGY_J:g} J (lower the current, voltage or slot_ms)",
            )
        last = s.frame.slots - 1
        if tr.release_slot > last:
            raise ScenarioError(
                f"{where}.release_slot",
                f"slot {tr.release_slot} is outside the frame (slots 0..{last})",
            )
        if tr.deadline_slot is not None and tr.deadline_slot > last:
            raise ScenarioError(
                f"{where}.deadline_slot",
                f"slot {tr.deadline_slot} is outside the frame (slots 0..{last})",
            )
        for i, path in enumerate(tr.paths or ()):
            _check_path(topology, tr.id, i, path)


def _check_path(topology: Topology, transfer_id: str, index: int, path: tuple[str, ...]) -> None:
    tr = topology.scenario.transfer(transfer_id)
    where = f"transfers[{transfer_id}].paths[{index}]"
    if not path or path[0] != tr.source:
        raise ScenarioError(where, f"must start at the transfer's source '{tr.source}'")
    if path[-1] != tr.sink:
        raise ScenarioError(where, f"must end at the transfer's sink '{tr.sink}'")
    try:
        topology.hops(path)
    except RouteError as exc:
        raise ScenarioError(where, f"not a connected path: {exc}") from exc
    problem = topology.limit_violation(path, tr.voltage_v, tr.current_a)
    if problem:
        raise ScenarioError(where, f"exceeds a limit: {problem}")


def _check_quotes(s: Scenario) -> None:
    terminals = {t.id: t for t in s.terminals}
    for table, quotes, wants in (("offers", s.offers, "send"), ("bids", s.bids, "receive")):
        for q in quotes:
            where = f"{table}[{q.id}].terminal"
            term = terminals.get(q.terminal)
            if term is None:
                raise ScenarioError(where, f"unknown terminal '{q.terminal}'")
            ok = term.can_send if wants == "send" else term.can_receive
            if not ok:
                role = "sell (offer)" if wants == "send" else "buy (bid)"
                raise ScenarioError(
                    where, f"terminal '{q.terminal}' is a {term.kind} and cannot {role}"
                )


def _check_twin(s: Scenario) -> None:
    routers = {r.id: r for r in s.routers}
    for r in s.twin.routers:
        if r.id not in routers:
            raise ScenarioError(
                f"twin.routers[{r.id}].id", f"unknown router '{r.id}' (known: {_names(routers)})"
            )


def _check_mec(s: Scenario, topology: Topology) -> None:
    if s.mec is None:
        return
    terminals = {t.id: t for t in s.terminals}
    if not s.mec.servers:
        raise ScenarioError("mec.servers", "no MEC server; add a [[mec.servers]] entry")
    if not s.mec.sources:
        raise ScenarioError("mec.sources", "no source; add a [[mec.sources]] entry")
    entries: list[tuple[str, Sequence[MecServer | MecSource], str]] = [
        ("mec.servers", s.mec.servers, "load"),
        ("mec.sources", s.mec.sources, "source"),
    ]
    for table, listed, wants in entries:
        seen: set[str] = set()
        for i, entry in enumerate(listed):
            where = f"{table}[{i}].terminal"
            term = terminals.get(entry.terminal)
            if term is None:
                raise ScenarioError(where, f"unknown terminal '{entry.terminal}'")
            if term.kind != wants:
                raise ScenarioError(
                    where, f"terminal '{entry.terminal}' is a {term.kind}; it must be a {wants}"
                )
            if entry.terminal in seen:
                raise ScenarioError(where, f"terminal '{entry.terminal}' is listed twice")
            seen.add(entry.terminal)
    for i, server in enumerate(s.mec.servers):
        term = terminals[server.terminal]
        if server.current_a > term.max_current_a:
            raise ScenarioError(
                f"mec.servers[{i}].current_a",
                f"{server.current_a:g} A exceeds terminal {term.id}'s max_current_a "
                f"({term.max_current_a:g} A)",
            )
        energy = term.voltage_v * server.current_a * s.frame.tau_s
        if energy > MAX_PACKET_ENERGY_J:
            raise ScenarioError(
                f"mec.servers[{i}].current_a",
                f"a packet carries {energy:g} J; a header holds at most "
                f"{MAX_PACKET_ENERGY_J:g} J (lower the current or slot_ms)",
            )
        if not _mec_reachable(s, topology, server):
            raise ScenarioError(
                f"mec.servers[{i}].terminal",
                f"no source reaches server '{server.terminal}' within the route limits "
                f"({server.current_a:g} A at {term.voltage_v:g} V); add a line or a source "
                "near it, or lower its current_a",
            )


def _mec_reachable(s: Scenario, topology: Topology, server: MecServer) -> bool:
    """Can packets of the server's current and voltage come from some MEC source? A
    search over the routers through the lines and SOPs whose limits the packet fits (the
    route finder's graph); the source's own access and voltage must fit too."""
    assert s.mec is not None
    volts, amps = topology.terminals[server.terminal].voltage_v, server.current_a
    start = topology.terminals[server.terminal].port.router
    seen, todo = {start}, [start]
    while todo:
        router = todo.pop()
        for rid, _port in topology.links_at[router]:
            res = topology.resources[rid]
            far = res.other_end(router)
            fits = res.limit_violation(volts, amps) is None
            if far is not None and far.router not in seen and fits:
                seen.add(far.router)
                todo.append(far.router)
    for source in s.mec.sources:
        term = topology.terminals[source.terminal]
        access = topology.resources[source.terminal]
        if (
            term.port.router in seen
            and term.voltage_v >= volts
            and access.limit_violation(volts, amps) is None
        ):
            return True
    return False


def _names(items: Mapping[str, object]) -> str:
    names = sorted(items)
    return ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
