"""The twin's fault syntax: every kind parses to what it says and prints back the same;
a bad spec is one error naming it."""

from __future__ import annotations

import pytest

from bench import bundled_path, load_scenario
from sim_hw.errors import FaultSpecError
from sim_hw.faults import Fault, parse_fault

BENCH = load_scenario(bundled_path())


@pytest.mark.parametrize(
    "text, fault",
    [
        ("drop=0.05", Fault("drop", 0.05)),
        ("corrupt=0.01@R2", Fault("corrupt", 0.01, "R2")),
        ("delay=0.05@R3", Fault("delay", 0.05, "R3")),
        ("offline@R4", Fault("offline", router="R4")),
        ("stuck-open=R2:1", Fault("stuck-open", router="R2", port=1)),
        ("stuck-closed=R2:3", Fault("stuck-closed", router="R2", port=3)),
        ("trip=L23", Fault("trip", resource="L23")),
        ("skew=300@R2", Fault("skew", 300.0, "R2")),
        ("bank-flip@R2", Fault("bank-flip", router="R2")),
    ],
)
def test_every_kind_parses_and_prints_back(text: str, fault: Fault):
    assert parse_fault(text, BENCH) == fault
    assert str(fault) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("melt=1", "unknown kind 'melt'"),
        ("drop=0.1@R9", "unknown router 'R9'"),
        ("drop=1.5", "a probability is within 0..1"),
        ("delay=-1", "a delay is >= 0 seconds"),
        ("drop=lots", "drop needs a number"),
        ("offline", "write offline@ROUTER"),
        ("bank-flip", "write bank-flip@ROUTER"),
        ("bank-flip=1@R2", "write bank-flip@ROUTER"),
        ("stuck-open=R2:9", "needs ROUTER:PORT"),
        ("trip=L99", "needs a line or SOP id"),
        ("skew=300", "write skew=US@ROUTER"),
    ],
)
def test_bad_specs_are_one_error_naming_them(text: str, message: str):
    with pytest.raises(FaultSpecError) as err:
        parse_fault(text, BENCH)
    assert f"fault '{text}'" in str(err.value) and message in str(err.value)
    assert "\n" not in str(err.value)
