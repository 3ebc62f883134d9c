"""The roots of every error tree a run can raise on purpose: a bad scenario, a router that
refuses, a key store or journal that must not be used, a broker URL, ... Each says what
went wrong in one line. Anything else that escapes is a bug."""

from __future__ import annotations


def project_errors() -> tuple[type[Exception], ...]:
    """The typed errors of every layer (imported here only, when asked for)."""
    from bench.errors import BenchError
    from firmware_bridge.errors import BridgeError  # drivers, fleet, controller
    from firmware_bridge.headers.errors import HeaderError  # headers and key store
    from router.journal.errors import JournalError
    from router.mqtt.errors import MqttFeedError
    from router.settlement import SettlementError
    from router.timesync import TimeSyncError
    from scheduler.errors import SchedulerError
    from sim_hw.errors import TwinError

    return (
        BenchError,
        BridgeError,
        HeaderError,
        JournalError,
        MqttFeedError,
        SchedulerError,
        SettlementError,
        TimeSyncError,
        TwinError,
    )


class RunFailedError(Exception):
    """A run that failed once it had started (an error in the frame loop, a stage, a task
    of the session). By the time this is raised the run has ended safely: every gate
    opened if a frame had been armed, a ``stop`` record journaled, the journal closed.
    ``cause`` is the original error; ``expected`` says whether it is one of the
    project's typed errors (a refusal with a message of its own) or a bug."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.cause = cause

    @property
    def expected(self) -> bool:
        return isinstance(self.cause, project_errors())
