"""Stage 1: the one-to-many matching game between MEC servers and sources.

A server is matched to at most one source; source k takes at most quota_k servers. Servers
rank the sources that reach them by ascending loss fraction; sources rank servers by
ascending loss fraction, then descending demand; ties by index (scenario order). Deferred
acceptance (Gale-Shapley, college-admissions form) gives a stable matching, optimal for
the proposing side.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from scheduler.mec.instance import MecInstance

Proposer = Literal["servers", "sources"]


@dataclass(frozen=True)
class Preferences:
    server_ranks: tuple[tuple[int, ...], ...]  # per server: acceptable sources, best first
    source_ranks: tuple[tuple[int, ...], ...]  # per source: acceptable servers, best first
    quota: tuple[int, ...]

    def server_prefers(self, j: int, a: int | None, b: int | None) -> bool:
        """Does server j strictly prefer source a to b (None: unmatched)?"""
        return _better(self.server_ranks[j], a, b)

    def source_prefers(self, k: int, a: int | None, b: int | None) -> bool:
        return _better(self.source_ranks[k], a, b)


def _better(ranking: tuple[int, ...], a: int | None, b: int | None) -> bool:
    if a is None or a not in ranking:
        return False
    return b is None or b not in ranking or ranking.index(a) < ranking.index(b)


def preferences(inst: MecInstance) -> Preferences:
    n_src, n_srv = inst.loss.shape
    reach = np.isfinite(inst.loss)
    sources, servers = np.arange(n_src), np.arange(n_srv)
    server_ranks = []
    for j in range(n_srv):  # by loss, then index (np.lexsort: the last key first)
        order = np.lexsort((sources, inst.loss[:, j]))
        server_ranks.append(tuple(order[reach[order, j]].tolist()))
    source_ranks = []
    for k in range(n_src):  # by loss, then the larger demand, then index
        order = np.lexsort((servers, -inst.demand_j, inst.loss[k]))
        source_ranks.append(tuple(order[reach[k, order]].tolist()))
    return Preferences(tuple(server_ranks), tuple(source_ranks), tuple(int(q) for q in inst.quota))


# server index -> source index or None
Matching = tuple[int | None, ...]


def deferred_acceptance(prefs: Preferences, proposer: Proposer = "servers") -> Matching:
    n_srv = len(prefs.server_ranks)
    if proposer == "servers":
        return _servers_propose(prefs, n_srv)
    return _sources_propose(prefs, n_srv)


def _servers_propose(prefs: Preferences, n_srv: int) -> Matching:
    held: list[list[int]] = [[] for _ in prefs.source_ranks]  # servers each source holds
    nxt = [0] * n_srv
    free = list(range(n_srv))
    while free:
        j = free.pop(0)
        ranking = prefs.server_ranks[j]
        if nxt[j] >= len(ranking):
            continue  # j has asked every source it accepts
        k = ranking[nxt[j]]
        nxt[j] += 1
        held[k].append(j)
        order = prefs.source_ranks[k]
        held[k].sort(key=order.index)
        if len(held[k]) > prefs.quota[k]:
            free.append(held[k].pop())  # the source's worst held server is rejected
    match: list[int | None] = [None] * n_srv
    for k, servers in enumerate(held):
        for j in servers:
            match[j] = k
    return tuple(match)


def _sources_propose(prefs: Preferences, n_srv: int) -> Matching:
    match: list[int | None] = [None] * n_srv
    nxt = [0] * len(prefs.source_ranks)
    count = [0] * len(prefs.source_ranks)
    progress = True
    while progress:
        progress = False
        for k, ranking in enumerate(prefs.source_ranks):
            # a source with room offers to the next server on its list
            while count[k] < prefs.quota[k] and nxt[k] < len(ranking):
                j = ranking[nxt[k]]
                nxt[k] += 1
                progress = True
                if prefs.server_prefers(j, k, match[j]):
                    if match[j] is not None:
                        count[match[j]] -= 1  # type: ignore[index]
                    match[j] = k
                    count[k] += 1
    return tuple(match)


def blocking_pairs(prefs: Preferences, match: Matching) -> list[tuple[int, int]]:
    """Pairs (k, j) not matched together where server j prefers k to its match and k has
    room or prefers j to its worst matched server."""
    out = []
    for j, ranking in enumerate(prefs.server_ranks):
        for k in ranking:
            if match[j] == k or not prefs.server_prefers(j, k, match[j]):
                continue
            mine = [i for i, m in enumerate(match) if m == k]
            if len(mine) < prefs.quota[k]:
                out.append((k, j))
                continue
            worst = max(mine, key=prefs.source_ranks[k].index)
            if prefs.source_prefers(k, j, worst):
                out.append((k, j))
    return out


def pairs_of(match: Matching) -> list[tuple[int, int]]:
    return [(k, j) for j, k in enumerate(match) if k is not None]


def as_array(match: Matching) -> np.ndarray:
    return np.asarray([-1 if k is None else k for k in match], dtype=np.int64)
