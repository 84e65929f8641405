// Admin screens of the desk page: the label set, teams (and each rep's team, in the
// reps table) and each queue's SLA targets, all changed while the gateway runs.

import { clear, el } from "./render.js";

const $ = (id) => document.getElementById(id);
const KINDS = [
  ["first_response_s", "First response", 60, "minutes"],
  ["next_response_s", "Next response", 60, "minutes"],
  ["resolution_s", "Resolution", 3600, "hours"],
];

function number(value, unit) {
  return typeof value === "number" ? String(Math.round((value / unit) * 1000) / 1000) : "";
}

export class OrgAdmin {
  // desk: the desk page (api, fail)
  constructor(desk) {
    this.desk = desk;
    this.api = desk.api;
    this.teams = [];
    this.members = new Map(); // rep id -> team id
  }

  async start() {
    $("add-label").addEventListener("submit", (ev) => { ev.preventDefault(); this.addLabel(); });
    $("add-team").addEventListener("submit", (ev) => { ev.preventDefault(); this.addTeam(); });
    await Promise.all([this.loadLabels(), this.loadTeams(), this.loadQueues()]);
  }

  async run(fn) {
    try {
      await fn();
      $("desk-error").textContent = ""; // an earlier mistake is corrected
    } catch (e) {
      this.desk.fail(e);
    }
  }

  // --------------------------------------------------------------- labels
  async loadLabels() {
    const data = await this.api.get("/console/api/labels");
    clear($("label-set")).append(...data.labels.map((l) => {
      const chip = el("span", { class: "label-chip", text: l.name });
      if (l.colour) chip.style.borderColor = l.colour;
      return el("li", { "data-label": l.name }, chip, " ",
        el("button", { type: "button", "aria-label": "Rename label " + l.name, onclick: () => this.renameLabel(l) }, "Rename"),
        el("button", { type: "button", "aria-label": "Delete label " + l.name,
          onclick: () => this.run(async () => {
            await this.api.request("DELETE", "/console/api/admin/labels/" + l.id);
            await this.loadLabels();
          }) }, "Delete"));
    }));
  }

  async renameLabel(label) {
    const name = window.prompt(`New name of the label ${label.name}:`, label.name);
    if (!name || name.trim() === label.name) return;
    await this.run(async () => {
      await this.api.request("PATCH", "/console/api/admin/labels/" + label.id, { name: name.trim(), colour: label.colour });
      await this.loadLabels();
    });
  }

  async addLabel() {
    await this.run(async () => {
      await this.api.post("/console/api/admin/labels",
        { name: $("label-name").value.trim(), colour: $("label-colour").value || null });
      $("add-label").reset();
      await this.loadLabels();
    });
  }

  // ---------------------------------------------------------------- teams
  async loadTeams() {
    this.teams = (await this.api.get("/console/api/admin/teams")).teams;
    this.members = new Map();
    for (const t of this.teams) for (const id of t.rep_ids) this.members.set(id, t.id);
    clear($("teams")).append(...this.teams.map((t) => el("li", { "data-team": t.name },
      el("strong", { text: t.name }),
      el("span", { class: "what", text: " · " + t.rep_ids.length + (t.rep_ids.length === 1 ? " rep" : " reps") }),
      el("div", { class: "row" },
        el("button", { type: "button", "aria-label": "Rename team " + t.name, onclick: () => this.renameTeam(t) }, "Rename"),
        el("button", { type: "button", "aria-label": "Delete team " + t.name, onclick: () => this.deleteTeam(t) }, "Delete")))));
    this.fillTeamCells();
  }

  // The reps table's "Team" cells (desk.js draws the rows).
  fillTeamCells() {
    for (const cell of document.querySelectorAll("#reps td.team-cell")) {
      const repId = Number(cell.dataset.rep);
      const username = cell.dataset.username;
      const id = "team-of-" + repId;
      const select = el("select", { id, onchange: (ev) => this.setTeam(username, ev.target.value) },
        el("option", { value: "", text: "No team" }),
        ...this.teams.map((t) => el("option", { value: t.id, text: t.name })));
      select.value = this.members.has(repId) ? String(this.members.get(repId)) : "";
      clear(cell).append(el("label", { for: id, class: "sr", text: "Team of " + username }), select);
    }
  }

  async addTeam() {
    await this.run(async () => {
      await this.api.post("/console/api/admin/teams", { name: $("team-name").value.trim() });
      $("add-team").reset();
      await this.loadTeams();
    });
  }

  async renameTeam(team) {
    const name = window.prompt(`New name of the team ${team.name}:`, team.name);
    if (!name || name.trim() === team.name) return;
    await this.run(async () => {
      await this.api.request("PATCH", "/console/api/admin/teams/" + team.id, { name: name.trim() });
      await this.loadTeams();
    });
  }

  async deleteTeam(team) {
    await this.run(async () => {
      await this.api.request("DELETE", "/console/api/admin/teams/" + team.id);
      await this.loadTeams();
    });
  }

  async setTeam(username, teamId) {
    await this.run(async () => {
      await this.api.request("PUT", "/console/api/admin/reps/" + encodeURIComponent(username) + "/team",
        { team_id: teamId ? Number(teamId) : null });
      await this.loadTeams();
    });
  }

  // ------------------------------------------------------ queue SLA targets
  async loadQueues() {
    const data = await this.api.get("/console/api/admin/queues");
    const days = Object.entries(data.business_hours).map(([d, h]) => d + " " + h).join(", ");
    $("queues-hours").textContent = "Counted in business hours: " + (days || "always open") +
      " (" + data.business_timezone + "). At risk with less than " +
      Math.round(data.at_risk_share * 100) + "% of a target left.";
    clear($("queue-sla").tBodies[0]).append(...data.queues.map((q) => this.queueRow(q)));
  }

  queueRow(q) {
    const inputs = KINDS.map(([key, label, unit, unitName]) => {
      const id = "sla-" + q.queue + "-" + key;
      return el("td", {},
        el("label", { for: id, class: "sr", text: label + " target of " + q.queue + " (" + unitName + ")" }),
        el("input", { id, type: "number", min: "0", step: "any", value: number(q[key], unit), "data-key": key, "data-unit": unit }));
    });
    const row = el("tr", { "data-queue": q.queue }, el("th", { scope: "row", text: q.queue }), ...inputs,
      el("td", { text: q.set_in_console ? "set here" : "settings" }));
    row.append(el("td", {},
      el("button", { type: "button", "aria-label": "Save targets of " + q.queue, onclick: () => this.saveQueue(q.queue, row) }, "Save"),
      q.set_in_console ? el("button", { type: "button", "aria-label": "Reset targets of " + q.queue, onclick: () => this.resetQueue(q.queue) }, "Reset") : null));
    return row;
  }

  async saveQueue(queue, row) {
    const body = {};
    for (const input of row.querySelectorAll("input[data-key]")) {
      const value = input.value.trim();
      body[input.dataset.key] = value === "" ? null : Number(value) * Number(input.dataset.unit);
    }
    await this.run(async () => {
      await this.api.request("PUT", "/console/api/admin/queues/" + encodeURIComponent(queue) + "/sla", body);
      await this.loadQueues();
      $("queue-sla-result").textContent = "Saved the targets of " + queue + ".";
    });
  }

  async resetQueue(queue) {
    await this.run(async () => {
      await this.api.request("DELETE", "/console/api/admin/queues/" + encodeURIComponent(queue) + "/sla");
      await this.loadQueues();
      $("queue-sla-result").textContent = "The targets of " + queue + " are the settings' again.";
    });
  }
}
