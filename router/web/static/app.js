// The trading terminal page: plain DOM and fetch, no framework, nothing from a CDN.
"use strict";
const $ = (sel) => document.querySelector(sel);
let csrf = "";
let me = null;

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
function showError(form, err) {
  form.querySelectorAll(".error").forEach((e) => (e.textContent = ""));
  if (!err) return;
  const slot = form.querySelector(`.error[data-for="${err.field}"]`) || form.querySelector(".error");
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

async function refreshSession() {
  const s = await call("/api/session");
  csrf = s.csrf;
  me = s.user;
  $("#bench-name").textContent = s.bench;
  $("#who").textContent = me ? `${me.name} (${me.role})` : "";
  $("#logout").hidden = !me;
  $("#auth").hidden = !!me;
  $("#trade").hidden = !me || me.role === "operator";
  $("#operator").hidden = !me || me.role === "participant";
  $("#admin").hidden = !me || me.role !== "admin";
  if (me) {
    $("#order-terminal").replaceChildren(...s.terminals.map((t) => new Option(`${t.id} (${t.kind})`, t.id)));
  }
  if (s.settings) {
    $("#mechanism").replaceChildren(...s.settings.mechanisms.map((m) => new Option(m, m)));
    $("#mechanism").value = s.settings.mechanism;
    $("#interval").value = s.settings.interval;
  }
  await refreshData();
}

async function refreshData() {
  const book = await call("/api/book");
  rows("#book-offers", book.offers, (o) => [o.terminal, o.packets, o.price, o.green ? "yes" : ""]);
  rows("#book-bids", book.bids, (o) => [o.terminal, o.packets, o.price, o.green_premium, o.green_only ? "yes" : ""]);
  const cl = await call("/api/clearings");
  rows("#clearings", cl, (c) => [c.frame, c.mechanism, c.welfare.toFixed(3), c.volume, c.budget.toFixed(3), c.vcg_gap.toFixed(3)]);
  if (me && me.role !== "operator") {
    const mine = await call("/api/orders");
    rows("#my-orders", mine, (o) => [o.id, o.side, o.terminal, o.packets, o.price, o.valid_until_frame, o.status,
      o.status === "open" ? button("cancel", () => call(`/api/orders/${o.id}/cancel`, {}).then(refreshData)) : ""]);
  }
  if (me && me.role === "admin") {
    const users = await call("/api/admin/users");
    rows("#users", users, (u) => {
      const act = document.createElement("span");
      if (u.status !== "active") act.append(button("approve", () => admin(u.id, { action: "approve" })));
      else if (u.name !== me.name) act.append(button("disable", () => admin(u.id, { action: "disable" })));
      const term = document.createElement("input");
      term.size = 6; term.placeholder = "terminal"; term.className = "assign-terminal";
      act.append(term, button("assign", () => admin(u.id, { action: "assign", terminal: term.value })));
      const role = document.createElement("select");
      for (const r of ["participant", "operator", "admin"]) role.append(new Option(r, r));
      role.value = u.role;
      role.addEventListener("change", () => admin(u.id, { action: "role", role: role.value }));
      return [u.name, role, u.status, u.terminals.join(", "), act];
    });
  }
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
  const svg = $("#gantt");
  svg.replaceChildren();
  const g = view.gantt[0];
  if (!g) return;
  const names = Object.keys(g.rows);
  const h = 160 / Math.max(names.length, 1);
  const ns = "http://www.w3.org/2000/svg";
  svg.setAttribute("viewBox", `0 0 ${g.slots + 40} 160`);
  const colors = {};
  names.forEach((name, i) => {
    const label = document.createElementNS(ns, "text");
    label.setAttribute("x", 0); label.setAttribute("y", i * h + h * 0.7);
    label.textContent = name;
    svg.append(label);
    for (const [slot, transfer] of g.rows[name]) {
      colors[transfer] ??= `hsl(${(Object.keys(colors).length * 67) % 360} 60% 55%)`;
      const r = document.createElementNS(ns, "rect");
      r.setAttribute("x", 40 + slot); r.setAttribute("y", i * h);
      r.setAttribute("width", 1); r.setAttribute("height", h * 0.9);
      r.setAttribute("fill", colors[transfer]);
      svg.append(r);
    }
  });
}

function listen() {
  const events = new EventSource("/api/events");
  events.onmessage = (e) => { drawBench(JSON.parse(e.data)); refreshData(); };
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
      $("#auth-note").textContent = u.status === "pending" ? `registered ${u.name}: waiting for an admin's approval` : `registered ${u.name} (${u.role}); log in`;
    } catch (err) { showError(auth, err); }
  });
  $("#logout").addEventListener("click", async () => { await call("/api/logout", {}); await refreshSession(); });
  const order = $("#order-form");
  const sideChanged = () => {
    const offer = $("#order-side").value === "offer";
    order.querySelectorAll(".offer-only").forEach((e) => (e.hidden = !offer));
    order.querySelectorAll(".bid-only").forEach((e) => (e.hidden = offer));
  };
  $("#order-side").addEventListener("change", sideChanged);
  sideChanged();
  order.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await call("/api/orders", formData(order)); showError(order, null); await refreshData(); }
    catch (err) { showError(order, err); }
  });
  const settings = $("#settings-form");
  settings.addEventListener("submit", async (e) => {
    e.preventDefault();
    try { await call("/api/operator/settings", formData(settings)); showError(settings, null); }
    catch (err) { showError(settings, err); }
  });
  $("#clear-button").addEventListener("click", async () => {
    const r = await call("/api/operator/clear", {});
    $("#operator-note").textContent = r.clearing ? `cleared frame ${r.clearing.frame}: ${r.clearing.volume} packets` : "nothing to clear";
    await refreshData();
  });
  $("#estop-button").addEventListener("click", () => call("/api/operator/estop", {}));
  refreshSession().then(listen);
});
