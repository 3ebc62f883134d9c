"""Injected faults, parsed once from the scenario's ``[twin]`` section or ``--fault``.

Syntax: ``KIND[=VALUE][@ROUTER]``, for example::

    drop=0.05            every router drops 5 % of its replies
    corrupt=0.01@R2      R2 corrupts 1 % of its replies (bad CRC; over TCP, as a gateway
                         does, exception 11 "target failed to respond")
    delay=0.05@R3        R3 answers 50 ms late (wall clock)
    offline@R4           R4 answers nothing (its firmware keeps running)
    stuck-open=R2:1      gate of port 1 of R2 never closes
    stuck-closed=R2:3    gate of port 3 of R2 never opens
    trip=L23             line (or SOP) L23 is held open by its breaker
    skew=300@R2          R2's clock jumps 300 us ahead
    bank-flip@R2         R2's upload buffer flips a bit of every upload (a failing
                         memory): its commits fail their CRC check
"""

from __future__ import annotations

from dataclasses import dataclass

from bench import Scenario
from sim_hw.errors import FaultSpecError

LINK_FAULTS = ("drop", "corrupt", "delay", "offline")
KINDS = (*LINK_FAULTS, "stuck-open", "stuck-closed", "trip", "skew", "bank-flip")
NO_VALUE = ("offline", "bank-flip")  # KIND@ROUTER


@dataclass(frozen=True)
class Fault:
    kind: str
    value: float = 0.0
    router: str | None = None  # None: every router
    port: int | None = None
    resource: str | None = None

    def __str__(self) -> str:
        if self.kind in ("stuck-open", "stuck-closed"):
            return f"{self.kind}={self.router}:{self.port}"
        if self.kind == "trip":
            return f"trip={self.resource}"
        value = "" if self.kind in NO_VALUE else f"={self.value:g}"
        return f"{self.kind}{value}" + (f"@{self.router}" if self.router else "")


def parse_fault(text: str, scenario: Scenario) -> Fault:
    spec, _, router = text.strip().partition("@")
    kind, has_value, value = spec.partition("=")
    routers = {r.id: r for r in scenario.routers}
    if kind not in KINDS:
        raise FaultSpecError(f"fault '{text}': unknown kind '{kind}' (one of {', '.join(KINDS)})")
    if router and router not in routers:
        raise FaultSpecError(f"fault '{text}': unknown router '{router}'")
    if kind in ("stuck-open", "stuck-closed"):
        rid, _, port = value.partition(":")
        if rid not in routers or not port.isdigit() or int(port) >= routers[rid].ports:
            raise FaultSpecError(f"fault '{text}': needs ROUTER:PORT of the scenario")
        return Fault(kind, router=rid, port=int(port))
    if kind == "trip":
        known = {x.id for x in scenario.lines} | {x.id for x in scenario.sops}
        if value not in known:
            raise FaultSpecError(f"fault '{text}': needs a line or SOP id")
        return Fault(kind, resource=value)
    if kind in NO_VALUE:
        if has_value or not router:
            raise FaultSpecError(f"fault '{text}': write {kind}@ROUTER")
        return Fault(kind, router=router)
    try:
        number = float(value)
    except ValueError:
        raise FaultSpecError(f"fault '{text}': {kind} needs a number, e.g. {kind}=0.05") from None
    if kind in ("drop", "corrupt") and not 0.0 <= number <= 1.0:
        raise FaultSpecError(f"fault '{text}': a probability is within 0..1")
    if kind == "delay" and number < 0:
        raise FaultSpecError(f"fault '{text}': a delay is >= 0 seconds")
    if kind == "skew" and not router:
        raise FaultSpecError(f"fault '{text}': write skew=US@ROUTER")
    return Fault(kind, number, router or None)
