"""Cross-checks between entries of a scenario: ids, ports, windows, paths, quotes.

Each problem names the entry by id (``transfers[T7].source``; by position when it has no
id: ``mec.servers[0]``) and says what would fix it. Every entry is checked: the first
problem is raised with the others in ``ScenarioError.more`` (``--all-errors`` shows them).
A problem ends the checks of its entry (or of one field), not the scenario's, except that
ports must be right before any route can be checked.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator, Mapping, Sequence

from bench.errors import RouteError, ScenarioError
from bench.limits import MAX_PACKET_ENERGY_J
from bench.models import MecServer, MecSource, PortRef, Scenario, Terminal, Transfer
from bench.topology import Topology


def check_scenario(scenario: Scenario) -> Topology:
    """Raise ``ScenarioError`` (every problem found) if anything is inconsistent; return
    the topology."""
    found = _Problems()
    _check_unique_ids(scenario, found)
    _check_ports(scenario, found)
    found.raise_any()  # routes need the ports right
    topology = Topology(scenario)
    _check_transfers(scenario, topology, found)
    _check_quotes(scenario, found)
    _check_twin(scenario, found)
    _check_mec(scenario, topology, found)
    found.raise_any()
    return topology


class _Problems:
    """The problems found so far; ``check()`` keeps one from ending the others' checks."""

    def __init__(self) -> None:
        self.found: list[ScenarioError] = []

    @contextlib.contextmanager
    def check(self) -> Iterator[None]:
        try:
            yield
        except ScenarioError as exc:
            self.found.append(exc)

    def add(self, where: str, message: str) -> None:
        self.found.append(ScenarioError(where, message))

    def raise_any(self) -> None:
        if self.found:
            raise ScenarioError.of(self.found)


def _check_unique(table_ids: Iterable[tuple[str, str]], namespace: str, found: _Problems) -> None:
    seen: dict[str, str] = {}
    for table, entry_id in table_ids:
        with found.check():
            if entry_id in seen:
                raise ScenarioError(
                    f"{table}[{entry_id}].id",
                    f"duplicate id '{entry_id}' (already used by {seen[entry_id]}); "
                    f"{namespace} ids must be unique",
                )
            seen[entry_id] = f"{table}[{entry_id}]"


def _check_unique_ids(s: Scenario, found: _Problems) -> None:
    network = [("routers", r.id) for r in s.routers]
    network += [("terminals", t.id) for t in s.terminals]
    network += [("lines", x.id) for x in s.lines]
    network += [("sops", x.id) for x in s.sops]
    _check_unique(network, "router, terminal, line and SOP", found)
    _check_unique([("transfers", t.id) for t in s.transfers], "transfer", found)
    quotes = [("offers", q.id) for q in s.offers] + [("bids", q.id) for q in s.bids]
    _check_unique(quotes, "offer and bid", found)


def _check_ports(s: Scenario, found: _Problems) -> None:
    routers = {r.id: r for r in s.routers}
    used: dict[tuple[str, int], str] = {}

    def claim(where: str, text: str) -> PortRef | None:
        with found.check():
            ref = PortRef.parse(text)
            router = routers.get(ref.router)
            if router is None:
                raise ScenarioError(
                    where, f"unknown router '{ref.router}' (known: {_names(routers)})"
                )
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
        return None

    for t in s.terminals:
        claim(f"terminals[{t.id}].at", t.at)
    for table, links in (("lines", s.lines), ("sops", s.sops)):
        for link in links:
            a = claim(f"{table}[{link.id}].a", link.a)
            b = claim(f"{table}[{link.id}].b", link.b)
            if a is not None and b is not None and a.router == b.router:
                found.add(
                    f"{table}[{link.id}].b",
                    f"both ends are on router {a.router}; a {table[:-1]} must join two routers",
                )


def _check_transfers(s: Scenario, topology: Topology, found: _Problems) -> None:
    for tr in s.transfers:
        ends = _check_ends(tr, topology, found)
        where = f"transfers[{tr.id}]"
        for term in ends:
            for field, value, limit, unit in (
                ("voltage_v", tr.voltage_v, "voltage_v", "V"),
                ("current_a", tr.current_a, "max_current_a", "A"),
            ):
                most = getattr(term, limit)
                if value > most:
                    found.add(
                        f"{where}.{field}",
                        f"{value:g} {unit} exceeds terminal {term.id}'s {limit} ({most:g} {unit})",
                    )
        with found.check():
            energy = tr.packet_energy_j(s.frame)
            if energy > MAX_PACKET_ENERGY_J:
                raise ScenarioError(
                    f"{where}.current_a",
                    f"a packet carries {energy:g} J; a header holds at most "
                    f"{MAX_PACKET_ENERGY_J:g} J (lower the current, voltage or slot_ms)",
                )
        last = s.frame.slots - 1
        with found.check():
            if tr.release_slot > last:
                raise ScenarioError(
                    f"{where}.release_slot",
                    f"slot {tr.release_slot} is outside the frame (slots 0..{last})",
                )
        with found.check():
            if tr.deadline_slot is not None and tr.deadline_slot > last:
                raise ScenarioError(
                    f"{where}.deadline_slot",
                    f"slot {tr.deadline_slot} is outside the frame (slots 0..{last})",
                )
        if len(ends) == 2:  # paths run from a known source to a known sink
            for i, path in enumerate(tr.paths or ()):
                with found.check():
                    _check_path(topology, tr.id, i, path)


def _check_ends(tr: Transfer, topology: Topology, found: _Problems) -> list[Terminal]:
    """The transfer's source and sink terminals that exist and can play their part."""
    where = f"transfers[{tr.id}]"
    ends = []
    for role, name, able, kinds in (
        ("source", tr.source, "can_send", "a source or storage terminal"),
        ("sink", tr.sink, "can_receive", "a load or storage terminal"),
    ):
        with found.check():
            term = topology.terminals.get(name)
            if term is None:
                raise ScenarioError(f"{where}.{role}", f"unknown terminal '{name}'")
            if not getattr(term, able):
                raise ScenarioError(
                    f"{where}.{role}",
                    f"terminal '{name}' is a {term.kind}; a {role} must be {kinds}",
                )
            ends.append(term)
    if len(ends) == 2 and tr.source == tr.sink:
        found.add(f"{where}.sink", "source and sink are the same terminal")
        return []
    return ends


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


def _check_quotes(s: Scenario, found: _Problems) -> None:
    terminals = {t.id: t for t in s.terminals}
    for table, quotes, wants in (("offers", s.offers, "send"), ("bids", s.bids, "receive")):
        for q in quotes:
            with found.check():
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


def _check_twin(s: Scenario, found: _Problems) -> None:
    routers = {r.id: r for r in s.routers}
    for r in s.twin.routers:
        with found.check():
            if r.id not in routers:
                raise ScenarioError(
                    f"twin.routers[{r.id}].id",
                    f"unknown router '{r.id}' (known: {_names(routers)})",
                )


def _check_mec(s: Scenario, topology: Topology, found: _Problems) -> None:
    if s.mec is None:
        return
    terminals = {t.id: t for t in s.terminals}
    with found.check():
        if not s.mec.servers:
            raise ScenarioError("mec.servers", "no MEC server; add a [[mec.servers]] entry")
    with found.check():
        if not s.mec.sources:
            raise ScenarioError("mec.sources", "no source; add a [[mec.sources]] entry")
    groups: list[tuple[str, Sequence[MecServer | MecSource], str]] = [
        ("mec.servers", s.mec.servers, "load"),
        ("mec.sources", s.mec.sources, "source"),
    ]
    for table, entries, wants in groups:
        seen: set[str] = set()
        for i, entry in enumerate(entries):
            with found.check():
                where = f"{table}[{i}].terminal"
                term = terminals.get(entry.terminal)
                if term is None:
                    raise ScenarioError(where, f"unknown terminal '{entry.terminal}'")
                if term.kind != wants:
                    raise ScenarioError(
                        where,
                        f"terminal '{entry.terminal}' is a {term.kind}; it must be a {wants}",
                    )
                if entry.terminal in seen:
                    raise ScenarioError(where, f"terminal '{entry.terminal}' is listed twice")
                seen.add(entry.terminal)
    for i, server in enumerate(s.mec.servers):
        term = terminals.get(server.terminal)
        with found.check():
            if term is not None and server.current_a > term.max_current_a:
                raise ScenarioError(
                    f"mec.servers[{i}].current_a",
                    f"{server.current_a:g} A exceeds terminal {term.id}'s max_current_a "
                    f"({term.max_current_a:g} A)",
                )
        if term is None or term.kind != "load":
            continue  # reported above
        with found.check():
            energy = term.voltage_v * server.current_a * s.frame.tau_s
            if energy > MAX_PACKET_ENERGY_J:
                raise ScenarioError(
                    f"mec.servers[{i}].current_a",
                    f"a packet carries {energy:g} J; a header holds at most "
                    f"{MAX_PACKET_ENERGY_J:g} J (lower the current or slot_ms)",
                )
        with found.check():
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
        term = topology.terminals.get(source.terminal)
        if term is None or term.kind != "source":
            continue  # reported by _check_mec
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
