"""One way to make a HiGHS solver: quiet, and single-threaded unless asked otherwise
(the planner runs beside the controller's event loop and the twin)."""

from __future__ import annotations

import highspy


def new_highs(threads: int | None = 1, **options: bool | int | float | str) -> highspy.Highs:
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    if threads is not None:
        h.setOptionValue("threads", threads)
    for name, value in options.items():
        h.setOptionValue(name, value)
    return h
