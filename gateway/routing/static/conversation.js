// The conversation pane: brief, customer, the cross-channel timeline, and what a
// rep does with a conversation they hold (reply, private note, transfer, hand
// back, close, approvals). A conversation offered to the rep is shown read-only
// with Accept and Decline, and its timeline stays live while the offer rings.

import {
  briefBlock, callStep, channelLabel, clear, customerBlock, customerName, el, eventItem,
  messageItem, stateLabel,
} from "./render.js";

const $ = (id) => document.getElementById(id);
const TYPING_EVERY_MS = 2500; // a rep's "typing" is repeated at most this often...
const TYPING_IDLE_MS = 4000; // ...and withdrawn after this long without a key
const BY = { webchat: "in the chat", sms: "by SMS", email: "by email, in the thread", phone: "on the call" };

export class Pane {
  constructor(app) {
    this.app = app;
    this.api = app.api;
    this.id = null;
    this.view = null;
    this.ids = new Set();
    this.typingShown = null;
    this.typingSentAt = 0;
    this.typingIdle = null;
    this.bind();
  }

  // ------------------------------------------------------------------ open
  async open(id, { focus = true } = {}) {
    const view = await this.api.get("/console/api/conversations/" + id);
    const same = this.id === id;
    this.id = id;
    this.render(view, same);
    await this.loadApprovals();
    this.app.markCurrent(id);
    if (focus) $("pane-title").focus();
  }

  async reload() {
    if (this.id === null) return;
    try {
      await this.open(this.id, { focus: false });
    } catch (e) {
      // No longer visible to this rep (closed, handed back, transferred away).
      if (e && e.status === 404) this.shut("This conversation is no longer yours to see.");
      else this.app.fail(e);
    }
  }

  shut(message) {
    this.stopTyping();
    this.id = null;
    this.view = null;
    this.ids = new Set();
    $("pane").hidden = true;
    const empty = $("pane-empty");
    empty.hidden = false;
    empty.textContent = message || "Open an offer or one of your conversations.";
    for (const id of ["timeline", "brief", "customer", "profile", "labels", "events", "pane-offer", "pane-approval-list"]) clear($(id));
    $("pane-sla").textContent = "";
    for (const id of ["reply-text", "note-text", "transfer-note", "close-note"]) $(id).value = "";
    this.app.markCurrent(null);
  }

  render(view, same) {
    this.view = view;
    const conv = view.conversation;
    const held = view.held_by_you;
    $("pane-empty").hidden = true;
    $("pane").hidden = false;
    $("pane-title").textContent = customerName(view.customer, conv.id) + " · " + channelLabel(conv.channel);
    $("pane-meta").textContent = "Conversation #" + conv.id + " · " + stateLabel(conv.state) +
      (conv.queue ? " · queue " + conv.queue : "");
    if (!same) $("pane-notice").textContent = "";
    this.renderOffer(view.offers || []);
    if (!held && !(view.offers || []).length) {
      const notice = $("pane-notice");
      const closedHere = notice.textContent.startsWith("Conversation #" + conv.id + ": Closed");
      if (!(conv.state === "closed" && closedHere)) {
        notice.textContent = conv.state === "closed"
          ? "Closed: read only." : "Read only: you do not hold this conversation.";
      }
    }
    clear($("brief")).append(briefBlock(conv.brief));
    clear($("customer")).append(customerBlock(view.customer, conv));
    if (!same) {
      this.loadProfile(conv.id);
      this.app.work.loadLabels(conv.id);
    }
    this.app.work.paneTimer();
    clear($("events")).append(...view.events.slice().reverse().map(eventItem));
    this.ids = new Set();
    clear($("timeline"));
    for (const m of view.messages) this.addMessage(m);
    this.renderCall(view.events);
    $("reply-label").textContent = "Reply to the customer " + (BY[conv.channel] || "");
    for (const id of ["reply-form", "note-form", "actions"]) $(id).hidden = !held;
    $("reopen").hidden = conv.state !== "closed";
    if (!same) $("typing").textContent = "";
    if (held) this.app.fillTargets($("transfer-target"));
  }

  renderOffer(offers) {
    const bar = clear($("pane-offer"));
    bar.hidden = !offers.length;
    if (!offers.length) return;
    const offer = offers[0];
    const from = offer.from_rep_id ? this.app.repName(offer.from_rep_id) : null;
    bar.append(
      el("strong", { text: from ? "Transfer offered by " + from : "Offered to you" }),
      ...(offer.note ? [el("span", { class: "transfer-note", text: "Note: " + offer.note })] : []),
      el("button", { type: "button", class: "primary", onclick: () => this.app.accept(offer.offer_id) }, "Accept"),
      el("button", { type: "button", onclick: () => this.app.decline(offer.offer_id) }, "Decline"),
    );
  }

  renderCall(events) {
    const steps = events.filter((e) => e.kind.startsWith("transfer.") && e.data && e.data.call_sid);
    const box = $("call-status");
    box.hidden = !steps.length;
    if (steps.length) {
      const last = steps[steps.length - 1];
      $("call-step").textContent = callStep(last.kind.slice("transfer.".length), last.data);
    }
  }

  // ------------------------------------------------------------- timeline
  addMessage(m) {
    if (!m || this.ids.has(m.id)) return;
    this.ids.add(m.id);
    const list = $("timeline");
    const item = messageItem(m, this.id);
    const after = Array.from(list.children).find((li) => Number(li.dataset.seq) > m.seq);
    list.insertBefore(item, after || null);
    if (!after) list.scrollTop = list.scrollHeight;
  }

  // A live event: apply what concerns the open conversation.
  onEvent(kind, data) {
    if (this.id === null || !this.view) return;
    const mine = data.conversation_id === this.id;
    if (kind === "message" && data.message && data.message.customer_id === this.view.customer.id) {
      this.addMessage(data.message);
      if (data.message.author === "customer") this.showTyping(false);
    } else if (kind === "call.transfer" && mine) {
      $("call-status").hidden = false;
      $("call-step").textContent = callStep(data.step, data);
    } else if (kind.startsWith("approval.") && mine) {
      if (data.message) this.addMessage(data.message);
      this.loadApprovals().catch((e) => this.app.fail(e));
    } else if (mine && ["assigned", "released", "transfer.accepted", "transfer.failed"].includes(kind)) {
      if (kind === "transfer.failed") $("pane-notice").textContent = "The transfer was not taken (" + data.reason + "): you still hold it.";
      this.reload();
    } else if (kind === "offer.closed" && (this.view.offers || []).some((o) => o.offer_id === data.offer_id)) {
      this.reload();
    }
  }

  onTyping(frame) {
    if (frame.conversation_id === this.id) this.showTyping(Boolean(frame.active));
  }

  showTyping(active) {
    window.clearTimeout(this.typingShown);
    $("typing").textContent = active ? "The customer is typing…" : "";
    // A lost "stopped typing" must not leave the indicator up for ever.
    if (active) this.typingShown = window.setTimeout(() => this.showTyping(false), 15000);
  }

  // ------------------------------------------------------------ approvals
  async loadApprovals() {
    if (this.id === null) return;
    const id = this.id;
    let items = [];
    try {
      items = (await this.api.get("/console/api/conversations/" + id + "/approvals")).approvals || [];
    } catch (e) {
      if (!e || e.status !== 404) throw e;
      // Seen only while its approval waited: what is shown stays, nothing more comes.
      if (this.id === id) $("pane-notice").textContent = "Decided: this conversation is no longer in your work.";
    }
    if (this.id !== id) return;
    $("pane-approvals").hidden = !items.length;
    clear($("pane-approval-list")).append(...items.map((a) => this.app.approvalItem(a, false)));
  }

  // ---------------------------------------------------------------- forms
  // Contact profile: tier and orders from the business backend, other conversations, ratings.
  async loadProfile(id) {
    const box = clear($("profile"));
    let p;
    try {
      p = await this.api.get("/console/api/conversations/" + id + "/profile");
    } catch (e) {
      return; // the pane still shows what the conversation view has
    }
    if (this.id !== id) return;
    const rows = [];
    const put = (label, value) => { if (value) rows.push(el("dt", { text: label }), el("dd", { text: value })); };
    put("Email", p.emails.join(", "));
    put("Phone", p.phones.join(", "));
    put("Tier", p.tier);
    put("Ratings", p.ratings.map((r) => r.score + "/5").join(", "));
    box.append(el("dl", { class: "brief" }, rows));
    if (p.backend_error) box.append(el("p", { class: "error", text: p.backend_error }));
    if (p.orders.length) {
      box.append(el("h4", { text: "Orders" }), el("ul", { class: "identities", "aria-label": "Orders" },
        p.orders.map((o) => el("li", { text: `${o.id} · ${o.status} · ${o.total} · ${o.placed_on}` }))));
    }
    if (p.conversations.length) {
      box.append(el("h4", { text: "Other conversations" }), el("ul", { class: "identities", "aria-label": "Other conversations" },
        p.conversations.map((c) => el("li", {}, el("button", { type: "button", class: "link", onclick: () => this.open(c.id) },
          `#${c.id} · ${channelLabel(c.channel)} · ${stateLabel(c.state)}`)))));
    }
  }

  // A closed conversation waits in its queue again, offered like any handover.
  async reopen() {
    const id = this.id;
    try {
      await this.api.post("/console/api/conversations/" + id + "/reopen", {});
      $("pane-notice").textContent = "Reopened: it waits in its queue and is offered to its reps.";
      if (this.id === id) await this.open(id, { focus: false });
    } catch (e) {
      $("pane-notice").textContent = e.message;
    }
  }

  // Canned responses: the list once per page; the chosen one is filled for this
  // conversation ({first_name}, {order}, {rep_name}) by the gateway and inserted.
  async loadCanned() {
    const select = $("canned");
    try {
      const data = await this.api.get("/console/api/canned");
      select.replaceChildren(el("option", { value: "", text: "Canned response…" }),
        ...data.canned.map((c) => el("option", { value: String(c.id), text: c.name })));
    } catch (e) { /* no canned responses: the list stays empty */ }
  }

  async insertCanned(select) {
    const id = select.value;
    select.value = "";
    if (!id || this.id === null) return;
    try {
      const { text } = await this.api.get(`/console/api/conversations/${this.id}/canned/${id}`);
      const box = $("reply-text");
      box.value = box.value ? box.value + " " + text : text;
      box.focus();
    } catch (e) {
      this.app.fail(e);
    }
  }

  bind() {
    $("reopen").addEventListener("click", () => this.reopen());
    $("canned").addEventListener("focus", () => this.loadCanned(), { once: true });
    $("canned").addEventListener("change", (ev) => this.insertCanned(ev.target));
    const reply = $("reply-text");
    $("reply-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.send("reply", reply);
    });
    reply.addEventListener("keydown", (ev) => {
      if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
        ev.preventDefault();
        $("reply-form").requestSubmit();
      }
    });
    reply.addEventListener("input", () => this.typing());
    $("note-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.send("note", $("note-text"));
    });
    $("transfer-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.transfer();
    });
    $("handback").addEventListener("click", () => this.release("handback", {}, "Handed back to the agent."));
    $("close-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      const note = $("close-note").value.trim();
      const body = { disposition: $("close-disposition").value };
      if (note) body.note = note;
      this.release("close", body, "Closed (" + body.disposition.replace(/_/g, " ") + ").");
    });
  }

  async send(kind, box) {
    const text = box.value.trim();
    if (!text || this.id === null) return;
    if (kind === "reply") this.stopTyping();
    const form = box.form;
    form.querySelector("button[type=submit]").disabled = true;
    try {
      const m = await this.api.post("/console/api/conversations/" + this.id + "/" + kind, { text });
      this.addMessage(m);
      box.value = "";
      this.app.announce(kind === "reply" ? "Reply sent." : "Note added.");
      if (kind === "reply") this.app.work.refreshTimers(); // answered: its SLA timer moves on
    } catch (e) {
      this.app.fail(e);
    } finally {
      form.querySelector("button[type=submit]").disabled = false;
      box.focus();
    }
  }

  typing() {
    if (this.id === null || !this.view || this.view.conversation.channel !== "webchat") return;
    const now = Date.now();
    if (now - this.typingSentAt > TYPING_EVERY_MS) {
      this.typingSentAt = now;
      this.app.live.send({ type: "typing", conversation_id: this.id, active: true });
    }
    window.clearTimeout(this.typingIdle);
    this.typingIdle = window.setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    window.clearTimeout(this.typingIdle);
    if (this.typingSentAt && this.id !== null) {
      this.app.live.send({ type: "typing", conversation_id: this.id, active: false });
    }
    this.typingSentAt = 0;
  }

  async transfer() {
    const target = $("transfer-target").value;
    if (!target || this.id === null) return;
    const [kind, value] = target.split(":");
    const body = { note: $("transfer-note").value.trim() };
    if (kind === "queue") body.queue = value;
    else body.rep_id = Number(value);
    try {
      await this.api.post("/console/api/conversations/" + this.id + "/transfer", body);
      $("transfer-note").value = "";
      const label = $("transfer-target").selectedOptions[0].textContent;
      const text = "Transfer to " + label + " requested: you keep the conversation until it is accepted.";
      $("pane-notice").textContent = text;
      this.app.announce(text);
    } catch (e) {
      this.app.fail(e);
    }
  }

  async release(action, body, done) {
    if (this.id === null) return;
    const id = this.id;
    try {
      await this.api.post("/console/api/conversations/" + id + "/" + action, body);
    } catch (e) {
      this.app.fail(e);
      return;
    }
    const message = "Conversation #" + id + ": " + done;
    if (action === "close" && this.id === id) {
      // Still readable (and reopenable) by the rep who closed it: shown read only.
      $("pane-notice").textContent = message;
      try {
        await this.open(id, { focus: false });
      } catch (e) {
        this.shut(message);
      }
    } else {
      this.shut(message);
    }
    this.app.announce(done);
    this.app.refresh();
  }
}
