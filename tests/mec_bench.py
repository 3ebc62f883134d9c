"""The bundled bench-4-mec worked out by hand from its file and docs/mec.md, for the MEC
tests: routes and loss fractions, the matching, each frame's demands, the pick rule's
point (closed form: this bench's pairs share only PV1 and R4) and its whole packets."""

from __future__ import annotations

import math

import numpy as np

E = 48 * 6 * 0.0049  # J a packet takes from its source: 6 A, 48 V, 5 ms less 100 us
SERVERS = ("MEC1", "MEC2", "MEC3")

# each pair's least-loss route as the planner writes routes (terminal, lines, terminal)
# and its resistance: the source's access 0.02 ohm, the lines, the server's access 0.03
ROUTES = {
    ("PV1", "MEC1"): (["PV1", "MEC1"], 0.02 + 0.03),
    ("PV1", "MEC2"): (["PV1", "L12", "L23", "MEC2"], 0.02 + 0.08 + 0.10 + 0.03),
    ("PV1", "MEC3"): (["PV1", "L41", "MEC3"], 0.02 + 0.09 + 0.03),
    ("PV2", "MEC1"): (["PV2", "L23", "L12", "MEC1"], 0.02 + 0.10 + 0.08 + 0.03),
    ("PV2", "MEC2"): (["PV2", "MEC2"], 0.02 + 0.03),
    ("PV2", "MEC3"): (["PV2", "L34", "MEC3"], 0.02 + 0.12 + 0.03),
}
LOSS = {pair: 6 * ohm / 48 for pair, (_, ohm) in ROUTES.items()}  # I R / V, no SOP
AVAILABLE = {"PV1": 36.0, "PV2": 45.0}
R4_CAP = 19.0  # J a frame; R4 is MEC3's router: every route to MEC3 crosses it
# each server proposes to its least-loss source and is kept: PV1 (quota 2) takes MEC1
# and MEC3, PV2 (quota 1) MEC2; sources proposing (by ascending loss) get the same
MATCHING = {"MEC1": "PV1", "MEC2": "PV2", "MEC3": "PV1"}


def loss_of(server: str) -> float:
    return LOSS[(MATCHING[server], server)]


def demands(frame: int) -> dict[str, float]:
    """Frame number ``frame``: MEC1 40 x 0.5 J; MEC2, MEC3 Poisson(60) x 0.5 J and
    Poisson(50) x 0.4 J, drawn in that order from a generator seeded by ([mec] seed 7,
    the frame's number)."""
    rng = np.random.default_rng([7, frame])
    return {"MEC1": 20.0, "MEC2": rng.poisson(60) * 0.5, "MEC3": rng.poisson(50) * 0.4}


def pick(frame: int) -> dict[str, float]:
    """The pick rule's point, J sent to each server on its matched pair. Full service of
    j takes a_j = D_j / (1 - l_j). The highest minimum satisfaction t is the tightest of
    1, PV1's A / (a_1 + a_3), R4's C / a_3 and PV2's A / a_2; then the highest mean: MEC2
    takes what PV2 gives, and PV1's energy left goes first to the server it satisfies
    most per joule (the smaller a_j; the smaller loss on a tie), within R4's cap; the
    least loss follows (one pair a server)."""
    d = demands(frame)
    a = {j: d[j] / (1 - loss_of(j)) for j in SERVERS}
    t = min(1.0, AVAILABLE["PV1"] / (a["MEC1"] + a["MEC3"]), R4_CAP / a["MEC3"])
    t = min(t, AVAILABLE["PV2"] / a["MEC2"])
    s = {"MEC1": t, "MEC2": min(1.0, AVAILABLE["PV2"] / a["MEC2"]), "MEC3": t}
    left = AVAILABLE["PV1"] - t * (a["MEC1"] + a["MEC3"])
    for j in sorted(("MEC1", "MEC3"), key=lambda j: (a[j], loss_of(j))):
        room = (1 - s[j]) * a[j]
        if j == "MEC3":
            room = min(room, R4_CAP - t * a["MEC3"])
        more = min(room, left)
        s[j] += more / a[j]
        left -= more
    return {j: s[j] * a[j] for j in SERVERS}


def packets(frame: int) -> dict[str, int]:
    """docs/mec.md's rounding of the pick rule's point: floor(x / E) packets each, then
    one more for each pair with a remainder, least satisfied first, where its source's
    energy and R4's cap (for MEC3) still hold a whole packet."""
    d, sent = demands(frame), pick(frame)
    count = {j: math.floor(sent[j] / E + 1e-9) for j in SERVERS}
    source_left = dict(AVAILABLE)
    for j in SERVERS:
        source_left[MATCHING[j]] -= count[j] * E
    r4_left = R4_CAP - count["MEC3"] * E
    short = [j for j in SERVERS if sent[j] / E - count[j] > 1e-9]
    for j in sorted(short, key=lambda j: (count[j] * E * (1 - loss_of(j)) / d[j], j)):
        if source_left[MATCHING[j]] >= E and (j != "MEC3" or r4_left >= E):
            count[j] += 1
            source_left[MATCHING[j]] -= E
            r4_left -= E if j == "MEC3" else 0.0
    return count
