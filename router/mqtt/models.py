"""Payloads of the MQTT feed: one frozen pydantic model per topic.

``docs/mqtt.md`` is generated from these models (field tables and examples), so a field
added here shows up there, and a test fails until the page is regenerated.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from bench.models import Id, Transfer

if TYPE_CHECKING:  # only for a method's signature: importing it would load the planner
    from router.settlement import TransferSettlement

RouterStateName = Literal["idle", "armed", "running", "safe", "fault", "offline"]
Severity = Literal["info", "warning", "critical"]
CommandName = Literal["estop", "transfer"]
# echoed in replies so a client can match them to its command; no wildcards, no newlines
CommandId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:\-]{1,64}$")]


def _now() -> datetime:
    return datetime.now(UTC)


class Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)


class FrameSummary(Payload):
    """One summary per frame, after its meters were read and settled."""

    scenario: Id = Field(description="the scenario's name")
    frame: int = Field(ge=0, description="frame number (never reused, see the journal)")
    time: datetime = Field(default_factory=_now, description="frame start, UTC")
    slots: int = Field(ge=1, description="slots in the frame")
    slot_ms: float = Field(gt=0, description="slot length")
    packets_planned: int = Field(ge=0, description="packets the plan placed")
    packets_undelivered: int = Field(ge=0, description="packets the planner could not place")
    packets_delivered: float = Field(
        ge=0, description="packets credited by the sink meters (fractional when short)"
    )
    energy_planned_j: float = Field(ge=0, description="energy due at the sinks, planned")
    energy_delivered_j: float = Field(ge=0, description="energy the sink meters measured")
    loss_j: float = Field(ge=0, description="planned conduction and SOP losses")
    objective: float = Field(description="the plan's objective")
    lower_bound: float | None = Field(description="certified lower bound (null: greedy)")
    gap: float | None = Field(description="(objective - lower_bound) / objective")
    plan_ms: float = Field(ge=0, description="market + planning time")
    seal_ms: float = Field(ge=0, description="header sealing time")
    upload_ms: float = Field(ge=0, description="slot-table upload time, all routers")
    commit_ms: float = Field(ge=0, description="bank commit time, all routers")
    late_ms: float = Field(
        default=0.0, ge=0, description="started this long after the frame before ended"
    )
    skipped: bool = Field(description="true: a commit failed and no router ran this frame")
    routers_down: tuple[Id, ...] = Field(description="routers left out of this frame's plan")
    alarms: int = Field(ge=0, description="alarms raised during the frame")
    mqtt_dropped: int = Field(ge=0, description="feed messages dropped so far (full buffer)")


class RouterState(Payload):
    """A router's state, retained: a dashboard that connects late sees it at once."""

    router: Id = Field(description="router id")
    state: RouterStateName = Field(description="`offline`: the router stopped answering")
    time: datetime = Field(default_factory=_now, description="when the state was read, UTC")
    frame: int | None = Field(ge=0, description="the frame it runs or last ran")
    alarms: tuple[str, ...] = Field(description="alarm bits set, by name")
    clock_offset_us: float | None = Field(description="its clock minus the controller's")
    clock_uncertainty_us: float | None = Field(ge=0, description="bound on that offset")


class PortTelemetry(Payload):
    """Meter readings of one router port for one frame."""

    router: Id = Field(description="router id")
    port: int = Field(ge=0, le=255, description="port number on the router")
    frame: int = Field(ge=0, description="frame number")
    time: datetime = Field(default_factory=_now, description="when the meter was read, UTC")
    energy_j: float = Field(description="energy through the port in the frame (out > 0)")
    voltage_v: float = Field(description="voltage in the last slot")
    current_a: float = Field(description="current in the last slot")


class TransferTelemetry(Payload):
    """One transfer's settlement for one frame."""

    transfer: Id = Field(description="transfer id (market trades: `S1-B2`)")
    frame: int = Field(ge=0, description="frame number")
    time: datetime = Field(default_factory=_now, description="when it was settled, UTC")
    seller: Id | None = Field(description="market offer id (null: an explicit transfer)")
    buyer: Id | None = Field(description="market bid id (null: an explicit transfer)")
    packets_planned: int = Field(ge=0, description="packets in the plan")
    packets_delivered: float = Field(ge=0, description="credited packets")
    energy_planned_j: float = Field(ge=0, description="due at the sink: E minus route losses")
    energy_delivered_j: float = Field(ge=0, description="the sink meter's reading")
    shortfall_j: float = Field(ge=0, description="energy planned and not delivered")
    compensation: float = Field(ge=0, description="paid by the seller to the buyer")

    @classmethod
    def from_settlement(cls, frame: int, t: TransferSettlement) -> TransferTelemetry:
        return cls(
            transfer=t.transfer,
            frame=frame,
            seller=t.seller,
            buyer=t.buyer,
            packets_planned=t.planned_packets,
            packets_delivered=t.delivered_packets,
            energy_planned_j=t.planned_sink_j,
            energy_delivered_j=t.delivered_j,
            shortfall_j=t.shortfall_j,
            compensation=t.compensation,
        )


class StageAccount(Payload):
    """A frame stage's account of one frame that ran (the journal's `stage` record)."""

    stage: Id = Field(description="the stage's name: `mec`, `dayahead`, ...")
    frame: int = Field(ge=0, description="frame number")
    time: datetime = Field(default_factory=_now, description="when it was settled, UTC")
    account: dict[str, Any] = Field(
        description="the stage's own fields, as journaled; each stage documents them "
        "(MEC: docs/mec.md)"
    )


class Alarm(Payload):
    """Something an operator should know: a router offline, a failed commit, an e-stop."""

    time: datetime = Field(default_factory=_now, description="UTC")
    frame: int | None = Field(ge=0, description="the frame it concerns, if any")
    severity: Severity = Field(description="`critical`: the bench stopped or will")
    source: str = Field(description="a router id, or `controller`")
    code: Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,40}$")] = Field(
        description="stable machine-readable name"
    )
    message: str = Field(description="one line for people")


class EstopCommand(Payload):
    """Open every gate and stop. An empty message is an e-stop too."""

    id: CommandId | None = Field(default=None, description="echoed in the reply")
    reason: str = Field(default="", max_length=200, description="journaled with the stop")


class TransferCommand(Payload):
    """Add a transfer request to the next frames' plans."""

    id: CommandId | None = Field(default=None, description="echoed in the reply")
    transfer: Transfer = Field(description="as a `[[transfers]]` entry of the scenario file")


class CommandReply(Payload):
    """The answer to every command, good or bad."""

    id: CommandId | None = Field(description="the command's id (null if it had none)")
    command: CommandName = Field(description="which command this answers")
    user: str | None = Field(default=None, description="who sent it: the user level of its topic")
    ok: bool = Field(description="true: the command was applied")
    time: datetime = Field(default_factory=_now, description="UTC")
    error: str | None = Field(default=None, description="why the command changed nothing")
    detail: str = Field(default="", description="what was done")


Command = EstopCommand | TransferCommand
