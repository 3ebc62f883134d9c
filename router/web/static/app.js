// The trading terminal page: plain DOM and fetch, no framework, nothing from a CDN.
"use strict";
const $ = (sel) => document.querySelector(sel);
let csrf = "";
let me = null;
let events = null;
let kinds = {};  // my terminals' kinds: a source only offers, a load only bids

async function call(path, body) {
  const opts = body === undefined ? {} : {
    method: "POST",
    headers: { "content-type": "application/json", "x-csrf-token": csrf },
    body: JSON.stringify(body),
  };
  const r = await fetch(path, opts);
  const data = await r.json();
  if (!r.ok) throw data;
  return data;
}

function formData(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name) continue;
    if (el.type === "checkbox") out[el.name] = el.checked;
    else out[el.name] = el.value;
  }
  return out;
}

// show a refusal's one line next to the field it names
function showError(where, err) {
  where.querySelectorAll(".error").forEach((e) => (e.textContent = ""));
  if (!err) return;
  const slot = where.querySelector(`.error[data-for="${err.field}"]`) || where.querySelector(".error");
  slot.textContent = err.error || String(err);
}

function rows(table, items, cells) {
  const body = $(table + " tbody");
  body.replaceChildren(...items.map((item) => {
    const tr = document.createElement("tr");
    for (const c of cells(item)) {
      const td = document.createElement("td");
      if (c instanceof Node) td.append(c); else td.textContent = c;
      tr.append(td);
    }
    return tr;
  }));
}

function button(text, onClick) {
  const b = document.createElement("button");
  b.textContent = text;
  b.addEventListener("click", onClick);
  return b;
}

const num = (x, digits = 3) => (x === null || x === undefined ? "" : Number(x).toFixed(digits));

async function refreshSession() {
  const s = await call("/api/session");
  csrf = s.csrf;
  me = s.user;
  $("#bench-name").textContent = s.bench;
  $("#who").textContent = me ? `${me.name} (${me.role})` : "";
  $("#logout").hidden = !me;
  $("#auth").hidden = !!me;
  $("#no-admin").hidden = s.has_admin;
  // an admin trades only on terminals of its own; an operator never does
  $("#trade").hidden = !me || me.role === "operator" || (me.role === "admin" && !s.terminals.length);
  $("#operator").hidden = !me || me.role === "participant";
  $("#admin").hidden = !me || me.role !== "admin";
  $("#book-panel").hidden = !me;
  $("#bench-panel").hidden = !me;
  if (me) {
    kinds = Object.fromEntries(s.terminals.map((t) => [t.id, t.kind]));
    $("#order-terminal").replaceChildren(...s.terminals.map((t) => new Option(`${t.id} (${t.kind})`, t.id)));
    terminalChanged();
  }
  if (s.mechanisms) {
    $("#mechanism").replaceChildren(...s.mechanisms.map((m) => new Option(m, m)));
    $("#mechanism").value = s.settings.mechanism;
    $("#interval").value = s.settings.interval;
    $("#scenario-interval").textContent = `(scenario: ${s.settings.scenario_interval}; "scenario" returns to it)`;
  }
  if (me) { await refreshData(); listen(); } else if (events) { events.close(); events = null; }
}

async function refreshData() {
  if (!me) return;
  const v = await call("/api/view");
  const ot = v.book.offer_totals, bt = v.book.bid_totals;
  $("#book-frame").textContent = `for frame ${v.book.frame}: ${ot.orders} offers (${ot.packets} packets), ${bt.orders} bids (${bt.packets} packets); the best shown`;
  rows("#book-offers", v.book.offers, (o) => [o.terminal, o.packets, o.price, o.green ? "yes" : ""]);
  rows("#book-bids", v.book.bids, (o) => [o.terminal, o.packets, o.price, o.green_premium, o.green_only ? "yes" : ""]);
  const cl = v.clearings;
  $("#schedule").textContent = `${cl.mechanism}, every ${cl.interval} frame(s); next clearing for frame ${cl.next_clearing}` + (cl.note ? `; ${cl.note}` : "");
  $("#valid-hint").textContent = `empty: ${cl.default_valid_frames} frames, through the clearings for frames ${cl.next_clearing} and ${cl.next_clearing + cl.interval}`;
  rows("#clearings", cl.clearings, (c) => [c.frame, c.mechanism, num(c.welfare), c.volume, num(c.budget), num(c.vcg_gap),
    c.status === "settled" ? `delivered in frame ${c.settled_frame}` : (c.exec_frame ? `running in frame ${c.exec_frame}` : c.status)]);
  if (v.orders) {
    // a positive payment goes to the operator (a buyer pays), a negative one comes from it
    rows("#my-orders", v.orders, (o) => [o.id, o.side, o.terminal, o.packets, o.price, o.valid_until_frame, o.status,
      o.remaining, o.traded, num(o.delivered_packets, 1), num(o.undelivered, 1), num(o.delivered_j, 1),
      o.paid > 0 ? num(o.paid) : "", o.paid < 0 ? num(-o.paid) : "", num(o.compensation),
      o.status === "open" || o.status === "partial" ? button("cancel", () => act(`/api/orders/${o.id}/cancel`, $("#order-form"))) : ""]);
    rows("#my-trades", v.trades, (t) => [t.cleared_frame, t.order_id, t.side, t.counterpart, t.packets, t.green ? "yes" : "",
      t.status === "settled" ? `delivered (frame ${t.settled_frame})` : t.status, num(t.delivered_packets, 1), num(t.delivered_j, 1),
      t.transfer || ""]);
    rows("#my-certificates", v.certificates, (c) => [c.id, c.frame, num(c.joules, 1), c.origin || "", c.terminal || "",
      c.retired ? "retired" : "held", c.retired ? "" : button("claim", () => act(`/api/certificates/${c.id}/retire`, $("#trade")))]);
  }
  if (v.users) {
    rows("#users", v.users, (u) => {
      const box = document.createElement("span");
      if (u.status !== "active") box.append(button("approve", () => admin(u.id, { action: "approve" })));
      else box.append(button("disable", () => admin(u.id, { action: "disable" })));
      const term = document.createElement("input");
      term.size = 6; term.placeholder = "terminal"; term.className = "assign-terminal";
      box.append(term, button("assign", () => admin(u.id, { action: "assign", terminal: term.value })));
      const role = document.createElement("select");
      for (const r of ["participant", "operator", "admin"]) role.append(new Option(r, r));
      role.value = u.role;
      role.addEventListener("change", () => admin(u.id, { action: "role", role: role.value }));
      const owned = document.createElement("span");
      owned.append(...u.terminals.map((t) => {
        const b = button(`${t} \u2715`, () => admin(u.id, { action: "unassign", terminal: t }));
        b.title = `unassign ${t} (its orders leave the book)`;
        b.className = "unassign";
        return b;
      }));
      return [u.name, role, u.status, owned, box];
    });
  }
}

async function act(path, where) {
  try { await call(path, {}); showError(where, null); } catch (err) { showError(where, err); }
  await refreshData();
}

async function admin(id, body) {
  try { await call(`/api/admin/users/${id}`, body); showError($("#admin"), null); }
  catch (err) { showError($("#admin"), err); }
  await refreshData();
}

function drawBench(view) {
  $("#bench-frame").textContent = `frame ${view.frame}`;
  const es = $("#estop-state");
  es.textContent = view.estopped ? "E-STOPPED" : "running";
  es.classList.toggle("on", view.estopped);
  const m = view.meters || {};
  $("#meters").textContent = m.packets_planned === undefined ? "no frame yet" :
    `packets ${m.packets_delivered}/${m.packets_planned}, energy ${m.energy_delivered_j}/${m.energy_planned_j} J, late ${m.late_ms} ms`;
  $("#alarms").replaceChildren(...view.alarms.map((a) => Object.assign(document.createElement("li"), { textContent: a })));
  drawGantt(view.gantt[0]);
}

// one row per resource, one column per slot, drawn in the chart's own pixels: the
// labels keep their shape whatever the width
const GANTT_ROW = 14, GANTT_LABEL = 52;
function drawGantt(g) {
  const svg = $("#gantt");
  svg.replaceChildren();
  if (!g) { svg.setAttribute("height", 0); return; }
  const names = Object.keys(g.rows);
  const width = Math.max(svg.clientWidth || svg.parentNode.clientWidth, GANTT_LABEL + g.slots);
  const height = names.length * GANTT_ROW;
  const slotW = (width - GANTT_LABEL) / g.slots;
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const ns = "http://www.w3.org/2000/svg";
  const colors = {};
  names.forEach((name, i) => {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 0); label.setAttribute("y", i * GANTT_ROW + GANTT_ROW * 0.8);
    label.textContent = name;
    svg.append(label);
    for (const [slot, transfer] of g.rows[name]) {
      colors[transfer] ??= `hsl(${(Object.keys(colors).length * 67) % 360} 60% 55%)`;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", GANTT_LABEL + slot * slotW); r.setAttribute("y", i * GANTT_ROW);
      r.setAttribute("width", slotW); r.setAttribute("height", GANTT_ROW - 2);
      r.setAttribute("fill", colors[transfer]);
      const tip = document.createElementNS(ns, "title");
      tip.textContent = `${name}, slot ${slot}: ${transfer}`;
      r.append(tip);
      svg.append(r);
    }
  });
}

// the live view: one event per change of the bench or the book; the tables follow
let pending = false;
function listen() {
  if (events) return;
  events = new EventSource("/api/events");
  events.onmessage = (e) => {
    drawBench(JSON.parse(e.data));
    if (pending) return;
    pending = true;  // at most one refresh in flight, however fast events come
    refreshData().catch(() => {}).finally(() => { pending = false; });
  };
}

// the order form shows the fields of its side
function sideChanged() {
  const offer = $("#order-side").value === "offer";
  $("#order-form").querySelectorAll(".offer-only").forEach((e) => (e.hidden = !offer));
  $("#order-form").querySelectorAll(".bid-only").forEach((e) => (e.hidden = offer));
}

// a source offers, a load bids, a storage terminal does either
function terminalChanged() {
  const kind = kinds[$("#order-terminal").value];
  const side = $("#order-side");
  for (const option of side.options) {
    option.disabled = (kind === "source" && option.value === "bid") || (kind === "load" && option.value === "offer");
  }
  if (side.selectedOptions[0]?.disabled) side.value = kind === "load" ? "bid" : "offer";
  sideChanged();
}

window.addEventListener("DOMContentLoaded", () => {
  const auth = $("#login-form");
  auth.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await call("/api/login", formData(auth)); showError(auth, null); await refreshSession(); }
    catch (err) { showError(auth, err); }
  });
  $("#register-button").addEventListener("click", async () => {
    try {
      const u = await call("/api/register", formData(auth));
      showError(auth, null);
      $("#auth-note").textContent = `registered ${u.name}: waiting for an admin's approval`;
    } catch (err) { showError(auth, err); }
  });
  $("#logout").addEventListener("click", async () => { await call("/api/logout", {}); await refreshSession(); });
  const order = $("#order-form");
  $("#order-side").addEventListener("change", sideChanged);
  $("#order-terminal").addEventListener("change", terminalChanged);
  sideChanged();
  order.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await call("/api/orders", formData(order)); showError(order, null); await refreshData(); }
    catch (err) { showError(order, err); }
  });
  const settings = $("#settings-form");
  settings.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await call("/api/operator/settings", formData(settings)); showError(settings, null); await refreshSession(); }
    catch (err) { showError(settings, err); }
  });
  $("#clear-button").addEventListener("click", async () => {
    try {
      const r = await call("/api/operator/clear", {});
      $("#operator-note").textContent = `the book clears for frame ${r.frame} (${r.mechanism})`;
    } catch (err) { $("#operator-note").textContent = err.error || String(err); }
  });
  $("#estop-button").addEventListener("click", async () => {
    if (!window.confirm("E-stop the bench? Every gate opens and the run ends; trading resumes only when ppr serve is started again.")) return;
    try { await call("/api/operator/estop", {}); $("#operator-note").textContent = "e-stopped"; }
    catch (err) { $("#operator-note").textContent = err.error || String(err); }
  });
  refreshSession();
});
