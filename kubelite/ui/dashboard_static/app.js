// kubelite dashboard: draws the snapshots the dashboard process streams (server-sent
// events) and sends the pause / resume / undo buttons to its action endpoints.
//
// Plain DOM code, no build step.  Each Deployment is one card kept by uid, so its buttons
// survive updates (a click is never lost to a redraw); the rest of a card is redrawn only
// when that Deployment's data changed.  Text always goes in through textContent.
"use strict";

(() => {
  const token = document.querySelector('meta[name="kubelite-token"]').content;
  const root = document.getElementById("deployments");
  const notice = document.getElementById("notice");
  const cards = new Map();  // uid -> {el, buttons, step, head, body, key, data}

  // A small element builder: h("td", {className: "x", dataset: {ts: t}}, "text", child…).
  function h(tag, props, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(props || {})) {
      if (k === "dataset") Object.assign(el.dataset, v);
      else if (k === "title") el.title = v;
      else el[k] = v;
    }
    for (const c of children) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : String(c));
    }
    return el;
  }

  function age(ts) {
    const t = Date.parse(ts);
    if (Number.isNaN(t)) return "?";
    const s = Math.max(0, Math.floor((Date.now() - t) / 1000));
    if (s < 120) return s + "s";
    if (s < 7200) return Math.floor(s / 60) + "m";
    if (s < 172800) return Math.floor(s / 3600) + "h";
    return Math.floor(s / 86400) + "d";
  }

  function ageCell(tag, ts) {
    return h(tag, {className: "age", dataset: {ts: ts || ""}}, age(ts));
  }

  function setConnection(ok, text) {
    const el = document.getElementById("connection");
    el.className = "conn " + (ok ? "conn-ok" : "conn-down");
    el.textContent = text;
  }

  function showNotice(text, bad) {
    notice.hidden = false;
    notice.className = bad ? "bad" : "ok";
    notice.textContent = text;
  }

  // --- actions ---------------------------------------------------------------------

  async function act(card, action) {
    const d = card.data;
    for (const b of Object.values(card.buttons)) b.disabled = true;
    const url = `/api/namespaces/${encodeURIComponent(d.namespace)}/deployments/` +
      `${encodeURIComponent(d.name)}/${action}`;
    try {
      const resp = await fetch(url, {method: "POST", headers: {"Authorization": "token " + token}});
      const body = await resp.json().catch(() => ({}));
      if (resp.ok) showNotice(body.message || `${action}: done`, false);
      else showNotice(`${d.namespace}/${d.name}: ${body.message || resp.statusText}`, true);
    } catch (err) {
      showNotice(`${d.namespace}/${d.name}: ${err}`, true);
    }
    setButtons(card, card.data);  // the next snapshot sets them again from what the API says
  }

  function setButtons(card, d) {
    card.buttons.pause.disabled = d.paused;
    card.buttons.resume.disabled = !d.paused;
    card.buttons.undo.disabled = d.paused || !d.canUndo;
  }

  // --- drawing -----------------------------------------------------------------------

  function replicaBar(rs) {
    const avail = Math.min(rs.available, rs.current);
    const ready = Math.max(0, Math.min(rs.ready, rs.current) - avail);
    const created = Math.max(0, rs.current - avail - ready);
    const missing = Math.max(0, rs.desired - rs.current);
    const bar = h("span", {className: "bar", title: `${avail} available, ${ready} ready, ` +
      `${created} created, ${missing} to create`});
    const add = (n, cls) => { for (let i = 0; i < n; i++) bar.append(h("i", {className: cls})); };
    add(avail, "b-available"); add(ready, "b-ready"); add(created, "b-created"); add(missing, "b-missing");
    return bar;
  }

  function podChip(p) {
    const label = p.restarts ? `${p.short} ${p.state} ↻${p.restarts}` : `${p.short} ${p.state}`;
    return h("span", {className: "pod s-" + p.state + (p.failing ? " failing" : ""),
      dataset: {pod: p.name, state: p.state},
      title: `${p.name}\n${p.state}${p.ip ? "\nIP " + p.ip : ""}${p.node ? "\nnode " + p.node : ""}`}, label);
  }

  // Traffic through the proxies to one revision: requests/s and errors (total, and /s).
  function trafficCells(t) {
    if (!t) return [h("td", {className: "num muted", dataset: {traffic: "none"}}, "–"), h("td", {className: "num muted"}, "–")];
    const kinds = [t.http5xx ? `${t.http5xx} HTTP 5xx` : "", t.failed ? `${t.failed} failed connects` : ""]
      .filter(Boolean).join(", ");
    return [
      h("td", {className: "num", dataset: {traffic: "rps"}, title: `${t.requests} requests in all`},
        t.requestsPerSecond.toFixed(1)),
      h("td", {className: "num" + (t.errors ? " errors" : ""), dataset: {traffic: "errors"},
        title: kinds || "no errors"}, `${t.errors}` + (t.errorsPerSecond ? ` (${t.errorsPerSecond.toFixed(1)}/s)` : "")),
    ];
  }

  function replicaSets(d) {
    const head = h("tr", {}, ...["", "rev", "ReplicaSet", "image", "desired", "current", "ready",
      "available", "req/s", "errors", ""].map((c) => h("th", {}, c)));
    const body = h("tbody");
    for (const rs of d.replicasets) {
      body.append(h("tr", {className: rs.new ? "rs-new" : "rs-old", dataset: {revision: rs.revision}},
        h("td", {className: "role"}, rs.new ? "new" : "old"), h("td", {className: "num"}, rs.revision),
        h("td", {}, rs.name), h("td", {className: "image"}, rs.image),
        ...[rs.desired, rs.current, rs.ready, rs.available].map((n) => h("td", {className: "num"}, n)),
        ...trafficCells(rs.traffic), h("td", {}, replicaBar(rs))));
      const pods = h("td", {colSpan: 11, className: "pods"});
      for (const p of rs.pods) pods.append(podChip(p));
      if (!rs.pods.length) pods.append(h("span", {className: "muted"}, "no pods"));
      body.append(h("tr", {className: "pods-row"}, pods));
    }
    if (!d.replicasets.length) body.append(h("tr", {}, h("td", {colSpan: 11, className: "muted"}, "no ReplicaSets yet")));
    return h("table", {className: "rs"}, h("thead", {}, head), body);
  }

  function conditions(d) {
    if (!d.conditions.length) return null;
    return h("ul", {className: "conditions"}, ...d.conditions.map((c) =>
      h("li", {className: c.status === "True" ? "c-true" : "c-false"},
        h("b", {}, `${c.type}=${c.status}`), ` ${c.reason}`, c.message ? h("span", {className: "muted"}, ` ${c.message}`) : null)));
  }

  function events(d) {
    const list = h("ul", {className: "events"});
    for (const ev of d.events.slice().reverse()) {
      list.append(h("li", {className: ev.type === "Warning" ? "ev-warning" : "ev-normal"},
        ageCell("span", ev.time), h("span", {className: "reason"}, ev.reason),
        h("span", {className: "object"}, ev.object), h("span", {}, ev.message),
        ev.count > 1 ? h("span", {className: "muted"}, ` (x${ev.count})`) : null));
    }
    if (!d.events.length) list.append(h("li", {className: "muted"}, "no events yet"));
    return h("div", {}, h("h3", {}, "Recent changes"), list);
  }

  function summary(d) {
    const s = d.status;
    return h("p", {className: "summary"},
      `replicas ${d.replicas} · ${d.strategy} · ${s.replicas || 0} pods · ${s.updatedReplicas || 0} up-to-date · ` +
      `${s.readyReplicas || 0} ready · ${s.availableReplicas || 0} available · ` +
      `generation ${d.generation} (observed ${d.observedGeneration})`);
  }

  function makeCard(d) {
    const id = `${d.namespace}/${d.name}`;
    const buttons = {};
    const actions = h("div", {className: "actions"});
    for (const [action, label] of [["pause", "Pause"], ["resume", "Resume"], ["undo", "Undo"]]) {
      buttons[action] = h("button", {type: "button", className: "btn-" + action,
        dataset: {action: action, deployment: id}}, label);
      actions.append(buttons[action]);
    }
    const head = h("span", {className: "badges"});
    const step = h("p", {className: "step"});
    const body = h("div", {className: "card-body"});
    const el = h("section", {className: "card", dataset: {deployment: id}},
      h("div", {className: "card-head"}, h("h2", {}, id), head, actions), step, body);
    const card = {el, buttons, step, head, body, key: "", data: d};
    for (const [action, b] of Object.entries(buttons)) b.addEventListener("click", () => act(card, action));
    return card;
  }

  function updateCard(card, d) {
    card.data = d;
    setButtons(card, d);
    const key = JSON.stringify(d);
    if (key === card.key) return;
    card.key = key;
    card.el.classList.toggle("paused", d.paused);
    card.head.replaceChildren(...[h("span", {className: "rev"}, `revision ${d.revision || "-"}`),
      d.paused ? h("span", {className: "badge badge-paused"}, "paused") : null,
      d.autoRollback ? h("span", {className: "badge"}, "auto-rollback") : null].filter(Boolean));
    card.step.className = "step tone-" + d.tone;
    card.step.textContent = "▶ " + d.step;
    card.body.replaceChildren(...[summary(d), conditions(d),
      d.rolledBackFrom ? h("p", {className: "rolled-back"}, `rolled back automatically from ${d.rolledBackFrom}`) : null,
      replicaSets(d), events(d)].filter(Boolean));
  }

  function render(snap) {
    document.getElementById("scope").textContent =
      `${snap.namespace ? "namespace " + snap.namespace : "all namespaces"} · ${snap.server}`;
    const seen = new Set();
    snap.deployments.forEach((d, i) => {
      seen.add(d.uid);
      let card = cards.get(d.uid);
      if (!card) {
        card = makeCard(d);
        cards.set(d.uid, card);
      }
      updateCard(card, d);
      // Move a card only when it is out of place: moving a node can swallow a click on it.
      if (root.children[i] !== card.el) root.insertBefore(card.el, root.children[i] || null);
    });
    for (const [uid, card] of cards) {
      if (!seen.has(uid)) { card.el.remove(); cards.delete(uid); }
    }
    for (const el of Array.from(root.children)) {
      if (!el.classList.contains("card")) el.remove();
    }
    if (!snap.deployments.length) root.append(h("p", {className: "empty"}, "No Deployments."));
    document.body.dataset.version = String((Number(document.body.dataset.version) || 0) + 1);
  }

  function connect() {
    const stream = new EventSource("/api/stream?token=" + encodeURIComponent(token));
    stream.addEventListener("rollouts", (e) => {
      setConnection(true, "live");
      render(JSON.parse(e.data));
    });
    stream.addEventListener("open", () => setConnection(true, "live"));
    // EventSource reconnects by itself; say so meanwhile.
    stream.addEventListener("error", () => setConnection(false, "reconnecting…"));
  }

  setInterval(() => {
    for (const el of document.querySelectorAll("[data-ts]")) el.textContent = age(el.dataset.ts);
  }, 1000);
  connect();
})();
