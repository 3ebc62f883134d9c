"""MEC server energy allocation (docs/mec.md): loss fractions of source-server routes,
a one-to-many matching by deferred acceptance, and the energy allocation over it."""

from scheduler.mec.instance import FIRST_FRAME, MecInstance, build_instance, demands_of
from scheduler.mec.matching import (
    Matching,
    blocking_pairs,
    deferred_acceptance,
    preferences,
)

__all__ = [
    "FIRST_FRAME",
    "Matching",
    "MecInstance",
    "blocking_pairs",
    "build_instance",
    "deferred_acceptance",
    "demands_of",
    "preferences",
]
