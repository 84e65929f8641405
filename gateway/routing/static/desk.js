// Reports (supervisors and admins) and admin screens (admins): reps, API tokens,
// canned responses; teams, labels and queue SLA targets in desk_org.js.

import { Api } from "./api.js";
import { bars } from "./charts.js";
import { showCost, showGaps } from "./cost_gaps.js";
import { OrgAdmin } from "./desk_org.js";
import { channelLabel, clear, el, percent } from "./render.js";

const $ = (id) => document.getElementById(id);
const DAY_MS = 86400000;

function isoDay(date) {
  const pad = (n) => String(n).padStart(2, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}`;
}

function startOf(value) {
  const [y, m, d] = value.split("-").map(Number);
  return new Date(y, m - 1, d);
}

function seconds(x) {
  return typeof x === "number" ? x.toFixed(1) : "–";
}

class Desk {
  constructor() {
    this.api = new Api(() => this.loggedOut());
    this.skills = [];
    this.org = new OrgAdmin(this);
  }

  async start() {
    let role;
    try {
      const me = await this.api.get("/console/api/me");
      this.api.csrf = me.csrf;
      role = (await this.api.get("/console/api/role")).role;
    } catch (e) {
      if (e.status) this.fail(e);
      return;
    }
    if (role === "rep") {
      $("desk-error").textContent = "Reports and admin are for supervisors and admins.";
      return;
    }
    $("reports").hidden = false;
    const today = new Date();
    $("until").value = isoDay(today);
    $("since").value = isoDay(new Date(today.getTime() - 6 * DAY_MS));
    $("period").addEventListener("submit", (ev) => { ev.preventDefault(); this.report(); });
    await this.loadFilters();
    await this.report();
    $("campaigns").hidden = false;
    $("add-campaign").addEventListener("submit", (ev) => { ev.preventDefault(); this.addCampaign(); });
    await this.loadCampaigns();
    if (role === "admin") {
      $("admin").hidden = false;
      $("add-rep").addEventListener("submit", (ev) => { ev.preventDefault(); this.addRep(); });
      $("add-token").addEventListener("submit", (ev) => { ev.preventDefault(); this.addToken(); });
      $("add-canned").addEventListener("submit", (ev) => { ev.preventDefault(); this.addCanned(); });
      await Promise.all([this.loadReps(), this.loadTokens(), this.loadCanned(), this.org.start()]);
    }
  }

  loggedOut() {
    $("reports").hidden = true;
    $("admin").hidden = true;
    $("desk-login").hidden = false;
  }

  fail(e) {
    $("desk-error").textContent = e.message || String(e);
  }

  // ------------------------------------------------------------- reports
  period() {
    const since = startOf($("since").value);
    const until = new Date(startOf($("until").value).getTime() + DAY_MS);
    const query = new URLSearchParams({ since: since.toISOString(), until: until.toISOString() });
    for (const name of ["channel", "queue", "rep", "team"]) {
      const value = $("filter-" + name).value;
      if (value) query.set(name, value);
    }
    return query;
  }

  // The choices of the channel, queue, rep and team filters ("All": not filtered).
  async loadFilters() {
    let options;
    try {
      options = await this.api.get("/console/api/reports/filters");
    } catch (e) {
      this.fail(e);
      return;
    }
    const fill = (id, items) => {
      const select = $(id);
      for (const [value, label] of items) select.append(el("option", { value: String(value), text: label }));
    };
    fill("filter-channel", options.channels.map((c) => [c, channelLabel(c)]));
    fill("filter-queue", options.queues.map((q) => [q, q]));
    fill("filter-rep", options.reps.map((r) => [r.id, `${r.name} (${r.username})`]));
    fill("filter-team", options.teams.map((t) => [t, t]));
  }

  async report() {
    $("desk-error").textContent = "";
    const query = this.period();
    $("csv").href = "/console/api/reports/summary.csv?" + query;
    let s;
    try {
      s = await this.api.get("/console/api/reports/summary?" + query);
    } catch (e) {
      this.fail(e);
      return;
    }
    const tile = (label, value) => el("div", { class: "tile" },
      el("span", { class: "value", text: value }), el("span", { class: "label", text: label }));
    clear($("tiles")).append(
      tile("Conversations", String(s.conversations)),
      tile("Resolved by the agent", `${s.bot_resolved} (${percent(s.resolution_rate) || "–"})`),
      tile("Handed over", `${s.handed_over} (${percent(s.handover_rate) || "–"})`),
      tile("CSAT average", s.csat.average === null ? "–" : `${s.csat.average} / 5 (${s.csat.count})`),
      tile("SLA breaches", String(s.sla_breaches)),
    );
    bars($("chart-channel"), Object.entries(s.by_channel).map(([c, n]) => [channelLabel(c), n]),
      { title: "Conversations by channel" });
    bars($("chart-hour"), s.by_hour.map((n, h) => [String(h), n]), { title: "Conversations by hour" });
    const other = s.conversations - s.bot_resolved - s.handed_over;
    bars($("chart-outcome"), [["Agent", s.bot_resolved], ["Person", s.handed_over], ["Open", other]],
      { title: "Outcome" });
    bars($("chart-csat"), Object.entries(s.csat.distribution), { title: "Ratings" });
    showExtras(s);
    const o = s.outreach;
    if (o) {
      clear($("outreach-tiles")).append(
        tile("Outreach sent", String(o.sent)),
        tile("Delivered", String(o.delivered)),
        tile("Replied to", String(o.replied)),
        tile("Failed", String(o.failed)),
        tile("Opted out", String(o.opted_out)),
        tile(`Calls saved (no contact in ${o.saved_after_days} days)`, `${o.calls_saved} of ${o.calls_saved_of}`),
      );
    }
    const row = (label, p) => el("tr", {}, el("th", { scope: "row", text: label }),
      el("td", { text: seconds(p.p50) }), el("td", { text: seconds(p.p90) }), el("td", { text: String(p.count) }));
    clear($("speed").tBodies[0]).append(
      row("First response by a rep", s.first_response_seconds),
      row("Next response by a rep", s.next_response_seconds),
      row("Wait in queue", s.queue_wait_seconds),
      row("Rep handle time", s.handle_seconds),
      row("Resolution", s.resolution_seconds),
    );
    if (s.cost) showCost(s.cost);
    await showGaps(this.api, query).catch((e) => this.fail(e));
  }

  // ----------------------------------------------------------- campaigns
  async loadCampaigns() {
    let data;
    try {
      data = await this.api.get("/console/api/outreach/campaigns");
    } catch (e) {
      this.fail(e);
      return;
    }
    const body = clear($("campaign-list").tBodies[0]);
    for (const c of data.campaigns) {
      const act = (action, label) => el("button", { type: "button", onclick: () => this.act(c.id, action) }, label);
      const actions = [];
      if (c.state === "running") actions.push(act("pause", "Pause"));
      if (c.state === "paused") actions.push(act("resume", "Resume"));
      if (c.state === "running" || c.state === "paused") actions.push(act("cancel", "Cancel"));
      actions.push(el("button", { type: "button", onclick: () => this.showCampaign(c.id) }, "Recipients"));
      const progress = el("progress", { max: String(c.total), value: String(c.finished), "aria-label": `${c.name} progress` });
      body.append(el("tr", { "data-campaign": c.id },
        el("td", { text: c.name }), el("td", { class: "campaign-state", text: c.state }),
        el("td", {}, progress, ` ${c.finished} / ${c.total}`),
        el("td", { class: "campaign-sent", text: String(c.counts.sent + c.counts.delivered) }),
        el("td", { text: String(c.counts.failed) }),
        el("td", { text: String(c.counts.skipped + c.counts.cancelled) }),
        el("td", {}, ...actions)));
    }
    clearTimeout(this.campaignTimer);
    if (data.campaigns.some((c) => c.state === "running")) {
      this.campaignTimer = setTimeout(() => this.refreshCampaigns(), 1000);
    }
  }

  async refreshCampaigns() {
    await this.loadCampaigns();
    if (this.shownCampaign) await this.showCampaign(this.shownCampaign);
  }

  async addCampaign() {
    const result = $("campaign-result");
    result.textContent = "";
    const file = $("campaign-csv").files[0];
    if (!file) {
      result.textContent = "Choose the list (a CSV file).";
      return;
    }
    const body = { name: $("campaign-name").value.trim(), csv: await file.text() };
    const put = (key, id) => { const v = $(id).value.trim(); if (v) body[key] = v; };
    put("sms", "campaign-sms");
    put("email_subject", "campaign-subject");
    put("email_body", "campaign-email");
    put("rate", "campaign-rate");
    try {
      const c = await this.api.post("/console/api/outreach/campaigns", body);
      result.textContent = `Started ${c.name}: ${c.total} recipients.`;
      $("add-campaign").reset();
      await this.loadCampaigns();
    } catch (e) {
      result.textContent = e.message;
    }
  }

  async act(id, action) {
    try {
      await this.api.post(`/console/api/outreach/campaigns/${encodeURIComponent(id)}/${action}`, {});
      await this.refreshCampaigns();
    } catch (e) {
      this.fail(e);
    }
  }

  async showCampaign(id) {
    let c;
    try {
      c = await this.api.get(`/console/api/outreach/campaigns/${encodeURIComponent(id)}`);
    } catch (e) {
      this.fail(e);
      return;
    }
    this.shownCampaign = id;
    $("campaign-recipients").hidden = false;
    $("recipients-title").textContent = `Recipients of ${c.name} (first ${c.recipients.length})`;
    const who = (r) => r.customer.phone || r.customer.email || r.customer.account;
    clear($("campaign-recipients").tBodies[0]).append(...c.recipients.map((r) => el("tr", {},
      el("td", { text: String(r.row) }), el("td", { text: who(r) }), el("td", { text: r.state }),
      el("td", { text: r.channel || "–" }), el("td", { text: r.error || "" }))));
  }

  // --------------------------------------------------------------- admin
  async loadReps() {
    const data = await this.api.get("/console/api/admin/reps");
    this.skills = data.skills;
    const box = $("rep-skills");
    for (const node of [...box.querySelectorAll("label")]) node.remove();
    for (const skill of data.skills) {
      box.append(el("label", {}, el("input", { type: "checkbox", value: skill, checked: skill === "general" }), " " + skill));
    }
    const body = clear($("reps").tBodies[0]);
    for (const rep of data.reps) {
      const toggle = el("button", { type: "button", onclick: () => this.update(rep.username, { disabled: !rep.disabled }) },
        rep.disabled ? "Enable" : "Disable");
      const reset = el("button", { type: "button", onclick: () => this.resetPassword(rep.username) }, "Reset password");
      body.append(el("tr", {},
        el("td", { text: rep.username }), el("td", { text: rep.display_name }), el("td", { text: rep.role }),
        el("td", { text: rep.skills.join(", ") }),
        el("td", { class: "team-cell", "data-rep": rep.id, "data-username": rep.username }),
        el("td", { text: rep.disabled ? "disabled" : rep.presence }),
        el("td", {}, toggle, " ", reset)));
    }
    this.org.fillTeamCells();
  }

  async addRep() {
    const result = $("add-rep-result");
    result.textContent = "";
    const skills = [...$("rep-skills").querySelectorAll("input:checked")].map((i) => i.value);
    try {
      const rep = await this.api.post("/console/api/admin/reps", {
        username: $("rep-username").value.trim(), display_name: $("rep-name").value.trim() || null,
        password: $("rep-password").value, role: $("rep-role").value, skills,
      });
      result.textContent = `Added ${rep.username}.`;
      $("add-rep").reset();
      await this.loadReps();
    } catch (e) {
      result.textContent = e.message;
    }
  }

  async update(username, changes) {
    try {
      await this.api.request("PATCH", "/console/api/admin/reps/" + encodeURIComponent(username), changes);
      await this.loadReps();
    } catch (e) {
      this.fail(e);
    }
  }

  async resetPassword(username) {
    const password = window.prompt(`New password for ${username} (8 characters or more):`);
    if (password) await this.update(username, { password });
  }

  async loadCanned() {
    const data = await this.api.get("/console/api/canned");
    clear($("canned-list")).append(...data.canned.map((c) => el("li", {},
      el("strong", { text: c.name }), el("div", { class: "what", text: c.text }),
      el("button", { type: "button", onclick: () => this.deleteCanned(c.id) }, "Delete"))));
  }

  async addCanned() {
    try {
      await this.api.post("/console/api/admin/canned", { name: $("canned-name").value.trim(), text: $("canned-text").value });
      $("add-canned").reset();
      await this.loadCanned();
    } catch (e) {
      this.fail(e);
    }
  }

  async deleteCanned(id) {
    try {
      await this.api.request("DELETE", "/console/api/admin/canned/" + id);
      await this.loadCanned();
    } catch (e) {
      this.fail(e);
    }
  }

  async loadTokens() {
    const data = await this.api.get("/console/api/admin/tokens");
    const list = clear($("tokens"));
    for (const t of data.tokens) {
      const revoke = t.revoked_at ? el("span", { text: " (revoked)" })
        : el("button", { type: "button", onclick: () => this.revoke(t.id) }, "Revoke");
      list.append(el("li", {}, el("span", { text: `${t.name} · created ${t.created_at.slice(0, 10)} ` }), revoke));
    }
  }

  async addToken() {
    try {
      const t = await this.api.post("/console/api/admin/tokens", { name: $("token-name").value.trim() });
      clear($("new-token")).append("Copy it now, it is not shown again: ",
        el("span", { class: "token-value", text: t.token }));
      $("add-token").reset();
      await this.loadTokens();
    } catch (e) {
      this.fail(e);
    }
  }

  async revoke(id) {
    try {
      await this.api.request("DELETE", "/console/api/admin/tokens/" + id);
      await this.loadTokens();
    } catch (e) {
      this.fail(e);
    }
  }
}

new Desk().start();

// The summary's messages, handover reasons and CSAT breakdowns (docs/reports.md).
function showExtras(s) {
  const m = s.messages;
  if (m) {
    bars($("chart-messages-channel"), Object.entries(m.by_channel).flatMap(([c, d]) =>
      [[`${channelLabel(c)} in`, d.inbound], [`${channelLabel(c)} out`, d.outbound]]),
    { title: "Messages by channel" });
    bars($("chart-messages-hour"), m.by_hour.inbound.map((n, h) => [String(h), n + m.by_hour.outbound[h]]),
      { title: "Messages by hour" });
  }
  bars($("chart-why"), Object.entries(s.handed_over_why || {}), { title: "Handed over: why" });
  const avg = (a) => (a === null ? "–" : `${a} / 5`);
  const row = (by, who, g) => el("tr", {}, el("th", { scope: "row", text: by }), el("td", { text: who }),
    el("td", { text: String(g.count) }), el("td", { text: avg(g.average) }));
  clear($("csat-by").tBodies[0]).append(
    ...Object.entries(s.csat_by_channel || {}).map(([c, g]) => row("Channel", channelLabel(c), g)),
    ...Object.entries(s.csat_by_queue || {}).map(([q, g]) => row("Queue", q || "(none)", g)),
    ...(s.csat_by_rep || []).map((r) => row("Rep", r.name, r)),
  );
}
