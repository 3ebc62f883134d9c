"""Upper bounds a scenario's numbers must respect: what the wire format can carry.

Headers and registers hold physical values as fixed-point unsigned counts (see
docs/headers.md and docs/register-map.md); a value beyond them cannot be sealed or
written, so the checker refuses it up front, for ``ppr plan`` and ``ppr run`` alike.
``tests/test_checker.py`` keeps these in step with the header layout.
"""

from __future__ import annotations

U16, U32 = 2**16 - 1, 2**32 - 1
MAX_VOLTAGE_V = U16 * 0.01  # header field ``voltage``: u16 in 0.01 V
MAX_CURRENT_A = U16 * 0.01  # header field ``current_limit``: u16 in 0.01 A
MAX_PACKET_ENERGY_J = U32 * 1e-4  # inner field ``energy``: u32 in 1e-4 J
MAX_SLOT_MS = U32 / 1000.0  # register ``slot_us``: u32 in us
MAX_GUARD_US = float(U16)  # register ``guard_us``: u16 in us
