"""The exact optimum of one prosumer's LP at given channel prices, in O(T x segments).

The prosumer faces, in each period t, channels: sources (grid import, P2P buys) that
cost a price per kWh up to a cap, and sinks (grid export, P2P sells, curtailment at 0)
that pay a value per kWh up to a cap. Its need is y = load - pv + c - d, and the balance
is sources - sinks >= y. Without a battery, the cheapest way to cover y is a merit
order: f_t(y) is convex and piecewise linear, the infimal convolution of the channels
(each channel is one segment whose slope is its price; segments sorted by slope).

With a battery, the state of charge e carries energy between periods. In stored-energy
units (Delta = e_{t+1} - e_t), the period's cost phi_t(Delta) = h f_t(y0 + u(Delta)) with
u = Delta / (eta h) when charging and Delta eta / h when discharging; phi_t is convex
because f_t is nondecreasing (curtailment is free) and eta <= 1. Charging and
discharging in the same period never pays (it only loses energy), so the optimum is the
dynamic programme V_t(e) = min_w phi_t(w - e) + V_{t+1}(w) over e in [0, capacity] with
V_T = 0 on [e_0, capacity]. Each V_t is convex piecewise linear: the infimal convolution
of V_{t+1} with phi_t reflected, which merges two slope-sorted segment lists, then cut to
[0, capacity]. The forward pass reads the optimal split off the merged lists.

Everything is exact up to floating point: the tests check it against HiGHS.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _order(price: np.ndarray, src: np.ndarray, t: int, order: np.ndarray) -> None:
    """Channel indices by price; at equal prices sinks before sources (a sink and a
    source at one price would only trade energy with itself)."""
    n = order.shape[0]
    for k in range(n):
        order[k] = k
    for a in range(1, n):
        j = order[a]
        key = price[j, t]
        b = a - 1
        while b >= 0:
            o = order[b]
            if price[o, t] > key or (price[o, t] == key and src[o] and not src[j]):
                order[b + 1] = o
                b -= 1
            else:
                break
        order[b + 1] = j


@njit(cache=True, nogil=True)
def _left_end(price: np.ndarray, cap: np.ndarray, src: np.ndarray, t: int) -> tuple:
    """(y, f(y)) at the left end of f_t: every sink at its cap, no source."""
    pos = 0.0
    val = 0.0
    for k in range(src.shape[0]):
        if not src[k]:
            pos -= cap[k, t]
            val -= price[k, t] * cap[k, t]
    return pos, val


@njit(cache=True, nogil=True)
def _cut(
    slope: np.ndarray,
    length: np.ndarray,
    count: int,
    left: float,
    value: float,
    lo: float,
    hi: float,
    out_slope: np.ndarray,
    out_length: np.ndarray,
) -> tuple:
    """A convex piecewise-linear function (``count`` segments, slopes ascending, from
    ``left`` where it is ``value``) restricted to [lo, hi], equal slopes merged into
    ``out_*``: (segments written, its new left end, its value there, whether it reaches
    ``hi``)."""
    pos, val = left, value
    n = 0
    new_left, new_val = left, value
    started = False
    for j in range(count):
        s, ln = slope[j], length[j]
        if ln <= 0.0:
            continue
        a, b = pos, pos + ln
        pos = b
        if b <= lo and not started:
            val += s * ln
            continue
        if not started:
            if a < lo:
                val += s * (lo - a)
                a = lo
            new_left, new_val, started = a, val, True
        top = min(b, hi)
        if top > a:
            if n > 0 and out_slope[n - 1] == s:
                out_length[n - 1] += top - a
            else:
                out_slope[n] = s
                out_length[n] = top - a
                n += 1
        if b >= hi:
            break
    if not started:
        new_left, new_val = max(pos, lo), val
    return n, new_left, new_val, pos >= hi


@njit(cache=True, nogil=True)
def _window(
    price: np.ndarray,
    cap: np.ndarray,
    src: np.ndarray,
    t: int,
    order: np.ndarray,
    ylo: float,
    yhi: float,
    slope: np.ndarray,
    length: np.ndarray,
) -> tuple:
    """f_t on [ylo, yhi]: (segments written, f(ylo)); -1 segments if the channels cannot
    cover the window (no source reaches yhi)."""
    left, value = _left_end(price, cap, src, t)
    C = order.shape[0]
    s_in = np.empty(C)
    l_in = np.empty(C)
    for a in range(C):
        s_in[a] = price[order[a], t]
        l_in[a] = cap[order[a], t]
    n, start, flo, reached = _cut(s_in, l_in, C, left, value, ylo, yhi, slope, length)
    if start > ylo or not reached:
        return -1, flo
    return n, flo


@njit(cache=True, nogil=True)
def _allocate(
    price: np.ndarray,
    cap: np.ndarray,
    src: np.ndarray,
    t: int,
    order: np.ndarray,
    y: float,
    q: np.ndarray,
) -> None:
    """The channels' quantities at need y: sources left of y in merit order are used,
    sinks right of it are filled."""
    pos, _ = _left_end(price, cap, src, t)
    for k in range(src.shape[0]):
        q[k, t] = 0.0 if src[k] else cap[k, t]
    for a in range(order.shape[0]):
        if pos >= y:
            break
        k = order[a]
        ln = cap[k, t]
        take = min(ln, y - pos)
        if src[k]:
            q[k, t] = take
        else:
            q[k, t] = ln - take
        pos += ln


@njit(cache=True, nogil=True)
def _grow(a: np.ndarray, need: int) -> np.ndarray:
    if need <= a.shape[0]:
        return a
    b = np.empty(max(need, 2 * a.shape[0]), dtype=a.dtype)
    b[: a.shape[0]] = a
    return b


@njit(cache=True, nogil=True)
def respond(
    y0: np.ndarray,
    price: np.ndarray,
    cap: np.ndarray,
    src: np.ndarray,
    h: float,
    eta: float,
    e_cap: float,
    kw: float,
    e0: float,
    q: np.ndarray,
    e: np.ndarray,
    c: np.ndarray,
    d: np.ndarray,
) -> float:
    """One prosumer's optimum: fills q (channels x T), e (T + 1), c, d; returns the cost
    sum_t h (sources' price x quantity - sinks' value x quantity). -inf if some period
    cannot be covered (give it a source with enough cap to avoid that)."""
    T = y0.shape[0]
    C = src.shape[0]
    orders = np.empty((T, C), dtype=np.int64)
    for t in range(T):
        _order(price, src, t, orders[t])
    battery = kw > 0.0 and e_cap > 0.0
    if not battery:
        for t in range(T):
            c[t] = 0.0
            d[t] = 0.0
            e[t] = e0
            _allocate(price, cap, src, t, orders[t], y0[t], q)
        e[T] = e0
        return _value(price, src, q, h)
    nmax = C + 1
    ws = np.empty((T, nmax))
    wl = np.empty((T, nmax))
    wn = np.empty(T, dtype=np.int64)
    wf = np.empty(T)
    for t in range(T):
        n, flo = _window(price, cap, src, t, orders[t], y0[t] - kw, y0[t] + kw, ws[t], wl[t])
        if n < 0:
            return -np.inf
        wn[t] = n
        wf[t] = flo
    # phi reflected, per period (2 nmax: the segment holding y0 splits in two)
    ps = np.empty(2 * nmax)
    pl = np.empty(2 * nmax)
    # W_t, the merged lists, kept for the forward pass; tag 1: the segment is V's
    size = 64 * T
    w_s = np.empty(size)
    w_l = np.empty(size)
    w_v = np.empty(size, dtype=np.int8)
    w_start = np.empty(T, dtype=np.int64)
    w_count = np.empty(T, dtype=np.int64)
    w_left = np.empty(T)
    v_left = np.empty(T + 1)
    vs = np.empty(4 * nmax)
    vl = np.empty(4 * nmax)
    v_left[T] = e0
    v_val = 0.0
    nv = 0
    if e_cap > e0:
        vs[0] = 0.0
        vl[0] = e_cap - e0
        nv = 1
    top = 0
    d_lo = kw * h / eta  # most stored energy one period's discharge removes
    d_hi = kw * h * eta  # most one period's charge adds
    for t in range(T - 1, -1, -1):
        # phi_t(Delta) on [-d_lo, d_hi] from f_t on [y0 - kw, y0 + kw] (y0 in the middle),
        # then reflected: z = -Delta, slopes negated, order reversed
        n = wn[t]
        np_ = 0
        y = -kw  # relative to y0
        f_hi = wf[t]
        for j in range(n):
            s = ws[t, j]
            ln = wl[t, j]
            f_hi += s * ln
            below = min(ln, max(0.0, -y))
            above = ln - below
            if below > 0.0:
                ps[np_] = s * eta
                pl[np_] = below * h / eta
                np_ += 1
            if above > 0.0:
                ps[np_] = s / eta
                pl[np_] = above * h * eta
                np_ += 1
            y += ln
        # reversed and negated
        for j in range(np_ // 2):
            a, b = ps[j], ps[np_ - 1 - j]
            ps[j], ps[np_ - 1 - j] = -b, -a
            a, b = pl[j], pl[np_ - 1 - j]
            pl[j], pl[np_ - 1 - j] = b, a
        if np_ % 2 == 1:
            ps[np_ // 2] = -ps[np_ // 2]
        z_lo = -d_hi
        # merge V_{t+1} (vs, vl) and the reflected phi into W_t
        need = top + nv + np_
        w_s = _grow(w_s, need)
        w_l = _grow(w_l, need)
        w_v = _grow(w_v, need)
        w_start[t] = top
        i = 0
        j = 0
        while i < nv or j < np_:
            if j >= np_ or (i < nv and vs[i] < ps[j]):
                w_s[top] = vs[i]
                w_l[top] = vl[i]
                w_v[top] = 1
                i += 1
            else:
                w_s[top] = ps[j]
                w_l[top] = pl[j]
                w_v[top] = 0
                j += 1
            top += 1
        w_count[t] = top - w_start[t]
        w_left[t] = v_left[t + 1] + z_lo
        pos = w_left[t]
        val = v_val + h * f_hi  # phi reflected at z_lo is phi at d_hi: h f(y0 + kw)
        # cut W_t to [0, e_cap]: V_t
        vs = _grow(vs, nv + np_)
        vl = _grow(vl, nv + np_)
        nv, v_left[t], v_val, _ = _cut(
            w_s[w_start[t] :], w_l[w_start[t] :], top - w_start[t], pos, val, 0.0, e_cap, vs, vl
        )
    # forward: e_{t+1} is V_{t+1}'s left end plus the V-part of W_t up to e_t
    e[0] = e0
    for t in range(T):
        p = e[t] - w_left[t]
        a = 0.0
        for k in range(w_start[t], w_start[t] + w_count[t]):
            if p <= 0.0:
                break
            take = min(w_l[k], p)
            if w_v[k] == 1:
                a += take
            p -= take
        nxt = v_left[t + 1] + a
        delta = min(max(nxt - e[t], -d_lo), d_hi)
        if delta > 0.0:
            c[t] = min(delta / (eta * h), kw)
            d[t] = 0.0
        else:
            c[t] = 0.0
            d[t] = min(-delta * eta / h, kw)
        nxt = e[t] + (eta * c[t] - d[t] / eta) * h
        e[t + 1] = min(max(nxt, 0.0), e_cap)
        _allocate(price, cap, src, t, orders[t], y0[t] + c[t] - d[t], q)
    return _value(price, src, q, h)


@njit(cache=True, nogil=True)
def _value(price: np.ndarray, src: np.ndarray, q: np.ndarray, h: float) -> float:
    total = 0.0
    for k in range(src.shape[0]):
        sign = 1.0 if src[k] else -1.0
        for t in range(q.shape[1]):
            total += sign * price[k, t] * q[k, t]
    return h * total
