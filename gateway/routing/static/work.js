// The rep's desk in the console: labels on the open conversation (and the search's
// label filter), SLA timers on each item of work with at-risk and breached counts
// per queue, and the waiting list: a rep takes an item, a lead assigns it to a rep.

import { clear, el, time } from "./render.js";

const $ = (id) => document.getElementById(id);
const POLL_MS = 15000;
const TARGET = { first_response: "first response", next_response: "next response", resolution: "resolution" };

// 42 s, 5 min, 2 h 10 min, 3 d 4 h
export function duration(seconds) {
  const s = Math.abs(seconds);
  if (s < 59.5) return Math.round(s) + " s";
  if (s < 3570) return Math.round(s / 60) + " min";
  if (s < 86400 - 30) {
    const minutes = Math.round(s / 60); // rounded once: never "1 h 60 min"
    const m = minutes % 60;
    return Math.floor(minutes / 60) + " h" + (m ? " " + m + " min" : "");
  }
  const hours = Math.round(s / 3600);
  const h = hours % 24;
  return Math.floor(hours / 24) + " d" + (h ? " " + h + " h" : "");
}

export function timerText(t) {
  const what = "SLA " + (TARGET[t.target] || t.target) + ": ";
  if (t.state === "breached") return what + "overdue by " + duration(t.left_s);
  const due = t.deadline ? " (due " + time(t.deadline) + ")" : "";
  return what + duration(t.left_s) + " left" + due + (t.state === "at_risk" ? ", at risk" : "");
}

export class Work {
  // app: the console (api, pane, directory, refresh, open, fail, announce)
  constructor(app) {
    this.app = app;
    this.role = "rep";
    this.labels = [];
    this.timers = { items: {}, queues: {} };
    this.poll = null;
    this.loading = null;
    this.again = false;
    $("label-add").addEventListener("change", (ev) => {
      const id = Number(ev.target.value);
      ev.target.value = "";
      if (id && this.app.pane.id !== null) this.setLabel(this.app.pane.id, id, true);
    });
  }

  async start() {
    this.stop();
    this.poll = window.setInterval(() => this.refreshTimers(), POLL_MS);
    await Promise.all([this.loadLabelSet(), this.refreshTimers()]).catch((e) => this.app.fail(e));
  }

  stop() {
    window.clearInterval(this.poll);
    this.poll = null;
    this.role = "rep";
    this.timers = { items: {}, queues: {} };
    $("pane-sla").textContent = "";
  }

  setRole(role) {
    const changed = role !== this.role;
    this.role = role;
    if (changed) this.app.refresh();
  }

  get leads() {
    return this.role === "supervisor" || this.role === "admin";
  }

  // --------------------------------------------------------------- labels
  async loadLabelSet() {
    this.labels = (await this.app.api.get("/console/api/labels")).labels;
    const search = $("search-label");
    const keep = search.value;
    clear(search).append(el("option", { value: "", text: "Any label" }),
      ...this.labels.map((l) => el("option", { value: l.name, text: l.name })));
    search.value = keep;
  }

  chip(name, extra) {
    const known = this.labels.find((l) => l.name === name);
    const chip = el("span", { class: "label-chip" }, name, extra || null);
    if (known && known.colour) chip.style.borderColor = known.colour; // CSSOM: CSP allows it
    return chip;
  }

  async loadLabels(id) {
    clear($("labels"));
    let data;
    try {
      data = await this.app.api.get("/console/api/conversations/" + id + "/labels");
    } catch (e) {
      return; // the pane shows the rest
    }
    if (this.app.pane.id === id) this.renderLabels(id, data.labels);
  }

  renderLabels(id, labels) {
    clear($("labels")).append(...labels.map((l) => el("li", {}, this.chip(l.name,
      el("button", { type: "button", class: "remove", "aria-label": "Remove label " + l.name,
        onclick: () => this.setLabel(id, l.id, false) }, "×")))));
    $("labels-empty").hidden = labels.length > 0;
    const on = new Set(labels.map((l) => l.id));
    clear($("label-add")).append(el("option", { value: "", text: "Add a label…" }),
      ...this.labels.filter((l) => !on.has(l.id)).map((l) => el("option", { value: l.id, text: l.name })));
  }

  async setLabel(id, labelId, on) {
    try {
      const path = "/console/api/conversations/" + id + "/labels/" + labelId;
      const data = await this.app.api.request(on ? "PUT" : "DELETE", path);
      if (this.app.pane.id === id) this.renderLabels(id, data.labels);
      const name = (this.labels.find((l) => l.id === labelId) || {}).name || "label";
      this.app.announce((on ? "Label added: " : "Label removed: ") + name + ".");
      await this.app.pane.reload(); // its activity log shows the change
    } catch (e) {
      this.app.fail(e);
    }
  }

  // ------------------------------------------------------------ SLA timers
  // One request at a time; asked again meanwhile, it runs once more after it (what
  // changed since the first began must show).
  refreshTimers() {
    if (this.loading) {
      this.again = true;
      return this.loading;
    }
    this.again = false;
    this.loading = this.app.api.get("/console/api/sla")
      .then((t) => { this.timers = t; this.decorate(); })
      .catch(() => {}) // the lists still show; the next poll tries again
      .finally(() => {
        this.loading = null;
        if (this.again) this.refreshTimers();
      });
    return this.loading;
  }

  decorate() {
    const items = this.timers.items || {};
    for (const li of document.querySelectorAll(".work li[data-conversation]")) {
      const old = li.querySelector(":scope > .sla");
      if (old) old.remove();
      const t = items[li.dataset.conversation];
      const anchor = [...li.querySelectorAll(":scope > .who, :scope > .what")].pop();
      if (t && anchor) anchor.after(this.timerNode(t));
    }
    for (const li of document.querySelectorAll("#queues li[data-queue]")) {
      const counts = (this.timers.queues || {})[li.dataset.queue];
      let node = li.querySelector(".sla-counts");
      if (!counts) {
        if (node) node.remove();
        continue;
      }
      if (!node) li.append(node = el("span", { class: "sla-counts" }));
      node.textContent = counts.at_risk + " at risk · " + counts.breached + " breached";
      node.classList.toggle("alert", counts.at_risk + counts.breached > 0);
    }
    this.paneTimer();
  }

  timerNode(t) {
    return el("div", { class: "sla " + t.state, text: timerText(t) });
  }

  paneTimer() {
    const id = this.app.pane.id;
    const t = id === null ? null : (this.timers.items || {})[String(id)];
    const node = $("pane-sla");
    node.className = "sla " + (t ? t.state : "");
    node.textContent = t ? timerText(t) : "";
  }

  // ---------------------------------------------------------- waiting list
  waitingItem(e) {
    const li = this.app.entryItem(e, "Preview");
    const who = e.customer || "conversation " + e.conversation_id;
    const row = li.querySelector(".row");
    row.append(el("button", { type: "button", "aria-label": "Take " + who, onclick: () => this.take(e.id) }, "Take"));
    if (this.leads) {
      const id = "assign-" + e.id;
      const select = el("select", { id },
        el("option", { value: "", text: "Choose a rep" }),
        ...this.app.directory.reps.map((r) => el("option", { value: r.id, text: r.display_name + " (" + r.presence + ")" })));
      row.append(el("label", { for: id, class: "sr", text: "Assign " + who + " to" }), select,
        el("button", { type: "button", "aria-label": "Assign " + who, onclick: () => this.assign(e.id, Number(select.value)) }, "Assign"));
    }
    return li;
  }

  async take(entryId) {
    try {
      const conv = await this.app.api.post("/console/api/waiting/" + entryId + "/take", {});
      this.app.refresh();
      await this.app.open(conv.id);
    } catch (e) {
      this.app.fail(e);
    }
  }

  async assign(entryId, repId) {
    if (!repId) {
      this.app.fail(new Error("Choose a rep to assign it to."));
      return;
    }
    try {
      await this.app.api.post("/console/api/waiting/" + entryId + "/assign", { rep_id: repId });
      this.app.announce("Assigned to " + this.app.repName(repId) + ".");
      this.app.refresh();
    } catch (e) {
      this.app.fail(e);
    }
  }
}
