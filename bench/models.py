"""Typed, frozen models of a bench description (the scenario file of docs/design.md).

Field-level rules (signs, ranges, finiteness) live here; rules that relate one entry to
another (unknown ids, ports used twice, disconnected paths) live in ``bench.validate``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StringConstraints, model_validator

from bench.limits import MAX_CURRENT_A, MAX_GUARD_US, MAX_SLOT_MS, MAX_VOLTAGE_V

# Ids appear in MQTT topics, file names and log lines: no separators, no wildcards.
Id = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,40}$")]
PortRefText = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.\-]{1,40}:[0-9]{1,3}$")]
# Strict: a TOML string "5" or a boolean is a mistake, not a number to coerce.
Positive = Annotated[float, Field(gt=0, strict=True)]
NonNegative = Annotated[float, Field(ge=0, strict=True)]
# Money per packet. The market's flow and VCG payments add and subtract prices; quotes
# near the float range give inf and NaN there, not an error.
MAX_PRICE = 1e6
Price = Annotated[float, Field(ge=0, le=MAX_PRICE, strict=True)]

MAX_SLOTS = 65535  # slot numbers travel as 16-bit fields in headers and registers
MAX_PORTS = 255


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, strict=False)


class Frame(Model):
    slots: Annotated[int, Field(ge=1, le=MAX_SLOTS, strict=True)]
    slot_ms: Annotated[float, Field(gt=0, le=MAX_SLOT_MS, strict=True)]
    guard_us: Annotated[float, Field(ge=0, le=MAX_GUARD_US, strict=True)] = 0.0

    @model_validator(mode="after")
    def _guard_inside_slot(self) -> Frame:
        if self.guard_us >= self.slot_ms * 1000.0:
            raise ValueError(
                f"guard_us ({self.guard_us:g}) must be shorter than the slot "
                f"({self.slot_ms * 1000.0:g} us)"
            )
        return self

    @property
    def tau_s(self) -> float:
        """Conduction time of one packet: the slot minus its switching guard."""
        return self.slot_ms / 1000.0 - self.guard_us / 1e6

    @property
    def length_s(self) -> float:
        return self.slots * self.slot_ms / 1000.0


class Costs(Model):
    loss_price_per_j: NonNegative = 0.0
    delay_price_per_slot: NonNegative = 0.0
    hold_price_per_slot: NonNegative = 0.0


class Router(Model):
    id: Id
    ports: Annotated[int, Field(ge=1, le=MAX_PORTS, strict=True)]
    storage_packets: Annotated[int, Field(ge=0, le=65535, strict=True)] = 0
    address: str | None = None
    max_transfer_j: Positive | None = None  # per frame: the most energy it can pass (MEC)


class PortRef(BaseModel):
    """``router:port`` parsed."""

    model_config = ConfigDict(frozen=True)
    router: str
    port: int

    @classmethod
    def parse(cls, text: str) -> PortRef:
        router, _, port = text.rpartition(":")
        return cls(router=router, port=int(port))

    def __str__(self) -> str:
        return f"{self.router}:{self.port}"


class Terminal(Model):
    id: Id
    kind: Literal["source", "load", "storage"]
    at: PortRefText
    voltage_v: Positive
    max_current_a: Positive
    resistance_ohm: Positive

    @property
    def port(self) -> PortRef:
        return PortRef.parse(self.at)

    @property
    def can_send(self) -> bool:
        return self.kind in ("source", "storage")

    @property
    def can_receive(self) -> bool:
        return self.kind in ("load", "storage")


class Line(Model):
    id: Id
    a: PortRefText
    b: PortRefText
    resistance_ohm: Positive
    max_current_a: Positive

    @property
    def ends(self) -> tuple[PortRef, PortRef]:
        return PortRef.parse(self.a), PortRef.parse(self.b)


class Sop(Model):
    """Soft open point: a power-electronic link between two routers."""

    id: Id
    a: PortRefText
    b: PortRefText
    max_power_w: Positive
    loss_coeff: Annotated[float, Field(ge=0, lt=1, strict=True)] = 0.0

    @property
    def ends(self) -> tuple[PortRef, PortRef]:
        return PortRef.parse(self.a), PortRef.parse(self.b)


class Transfer(Model):
    id: Id
    source: Id
    sink: Id
    packets: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]
    # what a header can carry (bench.limits); the route's own limits are checked in validate
    voltage_v: Annotated[float, Field(gt=0, le=MAX_VOLTAGE_V, strict=True)]
    current_a: Annotated[float, Field(gt=0, le=MAX_CURRENT_A, strict=True)]
    release_slot: Annotated[int, Field(ge=0, strict=True)] = 0
    deadline_slot: Annotated[int, Field(ge=0, strict=True)] | None = None
    value: Price
    paths: tuple[tuple[Id, ...], ...] | None = None

    @model_validator(mode="after")
    def _window_ordered(self) -> Transfer:
        if self.deadline_slot is not None and self.deadline_slot < self.release_slot:
            raise ValueError(
                f"deadline_slot ({self.deadline_slot}) is before release_slot ({self.release_slot})"
            )
        return self

    def deadline(self, frame: Frame) -> int:
        return frame.slots - 1 if self.deadline_slot is None else self.deadline_slot

    def packet_energy_j(self, frame: Frame) -> float:
        return self.voltage_v * self.current_a * frame.tau_s


class Quote(Model):
    """A market participant's per-packet price for one terminal."""

    id: Id
    terminal: Id
    packets: Annotated[int, Field(ge=0, le=1_000_000, strict=True)]
    price: Price


class Offer(Quote):
    """A seller's ask per packet. ``green``: the energy is of renewable origin (it earns a
    certificate per delivered joule)."""

    green: bool = False


class Bid(Quote):
    """A buyer's value per packet. ``green_premium``: what it pays on top per packet for
    green energy; ``green_only``: it buys green energy or nothing."""

    green_premium: Price = 0.0
    green_only: bool = False


class TwinRouter(Model):
    """How the software twin simulates one router (``[[twin.routers]]``)."""

    id: Id
    clock_offset_us: Annotated[float, Field(ge=0, strict=True)] = 0.0
    clock_drift_ppm: Annotated[float, Field(ge=-1000, le=1000, strict=True)] = 0.0


class TwinSection(Model):
    """``[twin]``: the software twin's router clocks and injected faults (``ppr twin``)."""

    routers: tuple[TwinRouter, ...] = ()
    faults: tuple[str, ...] = ()  # KIND[=VALUE][@ROUTER], as ppr twin --fault
    watchdog_timeout_ms: Annotated[int, Field(ge=0, le=65535, strict=True)] | None = None


Quota = Annotated[int, Field(ge=1, le=100_000, strict=True)]


class MecServer(Model):
    """``[[mec.servers]]``: an edge-computing server on a load terminal. Its requests per
    frame are fixed (``requests``), Poisson (``requests_mean``) or read from a trace."""

    terminal: Id
    energy_per_request_j: Positive
    requests: Annotated[int, Field(ge=0, le=1_000_000, strict=True)] | None = None
    requests_mean: NonNegative | None = None
    requests_trace: str | None = None
    current_a: Positive
    # the trace's counts, read once when the scenario is loaded from its file
    # (bench.mec_trace); not a field: a scenario file cannot set it
    _trace_counts: tuple[int, ...] | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _one_volume(self) -> MecServer:
        given = [self.requests, self.requests_mean, self.requests_trace]
        if sum(v is not None for v in given) != 1:
            raise ValueError("give exactly one of requests, requests_mean or requests_trace")
        return self

    @property
    def trace_counts(self) -> tuple[int, ...] | None:
        return self._trace_counts

    def with_trace(self, counts: tuple[int, ...]) -> MecServer:
        copy = self.model_copy()
        copy._trace_counts = counts
        return copy


class MecSource(Model):
    """``[[mec.sources]]``: a renewable source terminal and its energy per frame."""

    terminal: Id
    available_j: NonNegative
    quota: Quota | None = None


class MecSection(Model):
    """``[mec]``: energy allocation to MEC servers (docs/mec.md)."""

    quota: Quota = 3
    seed: Annotated[int, Field(ge=0, strict=True)] = 0
    servers: tuple[MecServer, ...] = ()
    sources: tuple[MecSource, ...] = ()

    def quota_of(self, source: MecSource) -> int:
        return self.quota if source.quota is None else source.quota


MAX_INTERVAL_FRAMES = 10_000


class MarketSection(Model):
    """``[market]``: the market that ``ppr serve`` runs on the bench (docs/web.md)."""

    # the web book clears every this many frames (the operator may override it)
    interval_frames: Annotated[int, Field(ge=1, le=MAX_INTERVAL_FRAMES, strict=True)] = 1


class Scenario(Model):
    name: Id
    frame: Frame
    costs: Costs = Costs()
    routers: tuple[Router, ...]
    terminals: tuple[Terminal, ...] = ()
    lines: tuple[Line, ...] = ()
    sops: tuple[Sop, ...] = ()
    transfers: tuple[Transfer, ...] = ()
    offers: tuple[Offer, ...] = ()
    bids: tuple[Bid, ...] = ()
    market: MarketSection = MarketSection()
    twin: TwinSection = TwinSection()
    mec: MecSection | None = None

    def router(self, router_id: str) -> Router:
        return next(r for r in self.routers if r.id == router_id)

    def terminal(self, terminal_id: str) -> Terminal:
        return next(t for t in self.terminals if t.id == terminal_id)

    def transfer(self, transfer_id: str) -> Transfer:
        return next(t for t in self.transfers if t.id == transfer_id)
