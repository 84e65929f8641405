// The rep console: login, the rep's work (offers, conversations, approvals,
// queues), live updates, and the conversation pane (conversation.js).

import { Api, Unauthorized } from "./api.js";
import { Live } from "./live.js";
import { Pane } from "./conversation.js";
import { Search } from "./search.js";
import { Work } from "./work.js";
import { channelLabel, clear, el, time } from "./render.js";

const $ = (id) => document.getElementById(id);
const REFRESHING = new Set([
  "offer", "offer.closed", "assigned", "released", "presence", "transfer.accepted", "transfer.failed",
  "wrap_up",
]);

class Console {
  constructor() {
    this.api = new Api(() => this.showLogin("Your session ended: log in again."));
    this.live = new Live({
      onEvent: (f) => this.onEvent(f),
      onFrame: (f) => this.onFrame(f),
      onStatus: (s) => this.onStatus(s),
      stillIn: () => this.stillIn(),
    });
    this.pane = new Pane(this);
    this.search = new Search(this);
    this.work = new Work(this);
    this.me = null;
    this.directory = { queues: [], reps: [] };
    this.offerIds = new Set();
    this.unread = new Map(); // conversation id -> messages not looked at
    this.refreshTimer = null;
    this.bind();
  }

  async start() {
    // A first visit (no session yet) is not a session that ended: a plain login.
    let me;
    try {
      me = await this.api.request("GET", "/console/api/me", null, { session: false });
    } catch (e) {
      this.showLogin(e.status === 401 ? "" : e.message);
      return;
    }
    await this.enter(me);
  }

  // -------------------------------------------------------------- session
  bind() {
    $("login-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.login();
    });
    $("logout").addEventListener("click", () => this.logout());
    $("presence").addEventListener("change", (ev) => this.setPresence(ev.target.value));
  }

  async login() {
    const error = $("login-error");
    error.textContent = "";
    const username = $("login-username").value.trim();
    const password = $("login-password").value;
    if (!username || !password) {
      error.textContent = "Enter your username and password.";
      return;
    }
    try {
      await this.api.login(username, password);
      $("login-password").value = "";
      await this.enter(await this.api.get("/console/api/me"));
    } catch (e) {
      error.textContent = e.code === "bad_credentials" ? "Wrong username or password." : e.message;
      $("login-password").focus();
    }
  }

  async logout() {
    this.live.stop();
    try {
      await this.api.logout();
    } catch (e) { /* the session is gone either way */ }
    this.showLogin("You are logged out.");
  }

  // Nothing of the last session stays on the page: a stale tab shows only the login.
  showLogin(message) {
    this.live.stop();
    this.work.stop();
    this.pane.shut();
    this.me = null;
    this.offerIds = new Set();
    this.unread = new Map();
    for (const id of ["offers", "held", "approvals", "queues", "waiting", "me-name", "console-error"]) clear($(id));
    this.search.clear();
    $("console-view").hidden = true;
    $("desk-link").hidden = true;
    $("login-view").hidden = false;
    $("login-error").textContent = message || "";
    $("login-username").focus();
  }

  async enter(me) {
    this.api.csrf = me.csrf;
    $("login-view").hidden = true;
    $("console-view").hidden = false;
    this.apply(me, true);
    this.live.start(me.seq);
    // Supervisors and admins also have the reports (and admins the admin screens).
    this.api.get("/console/api/role")
      .then((r) => { $("desk-link").hidden = r.role === "rep"; this.work.setRole(r.role); })
      .catch(() => {});
    this.work.start();
    await Promise.all([this.loadDirectory(), this.loadApprovals()]);
    // /console#c=<id> (the reports page's links) opens that conversation.
    const linked = /^#c=(\d+)$/.exec(location.hash);
    if (linked) {
      await this.open(Number(linked[1]));
      return;
    }
    const first = document.querySelector("#offers button, #held button");
    (first || $("presence")).focus();
  }

  async stillIn() {
    try {
      this.apply(await this.api.get("/console/api/me"), false);
      return true;
    } catch (e) {
      return !(e instanceof Unauthorized);
    }
  }

  async setPresence(status) {
    try {
      await this.api.post("/console/api/presence", { status });
      this.announce("You are " + status + ".");
    } catch (e) {
      this.fail(e);
    }
  }

  // ----------------------------------------------------------------- live
  onStatus(status) {
    const node = $("connection");
    node.textContent = { connecting: "Connecting…", live: "Live", reconnecting: "Reconnecting…", stopped: "" }[status] || status;
    node.classList.toggle("live", status === "live");
  }

  onEvent(frame) {
    const { kind, data } = frame;
    if (REFRESHING.has(kind)) this.refresh();
    if (kind === "queue.size") this.setQueue(data.queue, data.waiting);
    if (kind === "message") this.work.refreshTimers(); // a reply or a customer's message moves them
    if (kind.startsWith("approval.")) this.loadApprovals().catch((e) => this.fail(e));
    if (kind === "approval.pending") this.announce("A refund of " + (data.customer || "a customer") + " waits for approval.");
    if (kind === "transfer.accepted") this.announce("Your transfer of conversation " + data.conversation_id + " was accepted.");
    if (kind === "transfer.failed") this.announce("Your transfer of conversation " + data.conversation_id + " was not taken.");
    if (kind === "message" && data.message && data.message.author === "customer" && data.conversation_id !== this.pane.id) {
      this.unread.set(data.conversation_id, (this.unread.get(data.conversation_id) || 0) + 1);
      this.renderHeld();
    }
    this.pane.onEvent(kind, data);
  }

  onFrame(frame) {
    if (frame.type === "typing") this.pane.onTyping(frame);
  }

  // Lists come from /console/api/me: one round trip after a burst of events.
  refresh() {
    window.clearTimeout(this.refreshTimer);
    this.refreshTimer = window.setTimeout(async () => {
      try {
        this.apply(await this.api.get("/console/api/me"), false);
      } catch (e) {
        if (!(e instanceof Unauthorized)) this.fail(e);
      }
    }, 50);
  }

  apply(me, first) {
    this.me = me;
    $("me-name").textContent = me.rep.display_name + " (" + me.rep.username + ")";
    $("presence").value = me.rep.presence;
    const fresh = me.offers.filter((o) => !this.offerIds.has(o.offer_id));
    if (!first && fresh.length) {
      const o = fresh[0];
      this.announce("New offer: " + (o.customer || "a customer") + ", " + channelLabel(o.channel) + ", queue " + o.queue + ".");
    }
    this.offerIds = new Set(me.offers.map((o) => o.offer_id));
    // While an offer rings (a call above all) its brief and live timeline are on screen,
    // unless the rep is busy with another conversation. Focus stays where it is.
    if (fresh.length && this.pane.id === null) {
      this.pane.open(fresh[0].conversation_id, { focus: false }).catch((e) => this.fail(e));
    }
    this.renderOffers();
    this.renderHeld();
    clear($("queues")).append(...Object.entries(me.queues).map(([q, n]) => this.queueItem(q, n)));
    const more = (me.waiting_total || 0) - me.waiting.length;
    clear($("waiting")).append(...me.waiting.map((e) => this.work.waitingItem(e)),
      ...(more > 0 ? [el("li", { class: "more", text: "and " + more + " more" })] : []));
    $("waiting-empty").hidden = me.waiting.length > 0;
    this.work.decorate(); // the timers known so far, then fresh ones
    if (!first) this.work.refreshTimers();
  }

  // ---------------------------------------------------------------- lists
  summary(e) {
    const who = e.customer || "Conversation " + e.conversation_id;
    const what = [channelLabel(e.channel || (e.kind === "call" ? "phone" : "")), "queue " + e.queue, e.need]
      .filter(Boolean).join(" · ");
    return [el("div", { class: "who", text: who }), el("div", { class: "what", text: what })];
  }

  renderOffers() {
    const offers = this.me ? this.me.offers : [];
    clear($("offers")).append(...offers.map((o) => {
      const who = o.customer || "conversation " + o.conversation_id;
      const from = o.from_rep_id ? this.repName(o.from_rep_id) : null;
      return el("li", { "data-conversation": o.conversation_id },
        this.summary(o),
        from ? el("div", { class: "transfer-note", text: "Transfer from " + from + (o.note ? ": " + o.note : "") }) : null,
        o.rings_phone ? el("div", { class: "transfer-note", text: "Your phone is ringing: answer, hear the brief, press 1" }) : null,
        el("div", { class: "what", text: "Offer ends " + time(o.expires_at) }),
        el("div", { class: "row" },
          el("button", { type: "button", class: "primary", "aria-label": "Accept " + who, onclick: () => this.accept(o.offer_id) }, "Accept"),
          el("button", { type: "button", "aria-label": "Decline " + who, onclick: () => this.decline(o.offer_id) }, "Decline"),
          el("button", { type: "button", "aria-label": "Preview " + who, onclick: () => this.open(o.conversation_id) }, "Preview"),
        ));
    }));
    $("offers-empty").hidden = offers.length > 0;
    $("offers-count").textContent = offers.length ? "(" + offers.length + ")" : "";
    this.markCurrent(this.pane.id);
    this.work.decorate();
  }

  renderHeld() {
    const held = this.me ? this.me.held : [];
    clear($("held")).append(...held.map((e) => this.entryItem(e, "Open", this.unread.get(e.conversation_id))));
    $("held-empty").hidden = held.length > 0;
    this.markCurrent(this.pane.id);
    this.work.decorate();
  }

  entryItem(e, verb, unread) {
    const who = e.customer || "conversation " + e.conversation_id;
    return el("li", { "data-conversation": e.conversation_id },
      this.summary(e),
      e.wrap_up ? el("div", { class: "transfer-note", text: "Call over: wrap up, then close with a disposition" }) : null,
      el("div", { class: "row" },
        el("button", { type: "button", "aria-label": verb + " " + who + (unread ? ", " + unread + " new" : ""), onclick: () => this.open(e.conversation_id) },
          verb, unread ? el("span", { class: "unread", text: String(unread) }) : null)));
  }

  queueItem(queue, waiting) {
    return el("li", { "data-queue": queue }, el("span", { text: queue }), el("span", { class: "n", text: waiting + " waiting" }));
  }

  setQueue(queue, waiting) {
    const item = document.querySelector('#queues li[data-queue="' + CSS.escape(queue) + '"] .n');
    if (item) item.textContent = waiting + " waiting";
  }

  markCurrent(id) {
    for (const li of document.querySelectorAll(".work li[data-conversation]")) {
      li.classList.toggle("current", id !== null && Number(li.dataset.conversation) === id);
    }
  }

  // ------------------------------------------------------------ approvals
  async loadApprovals() {
    const found = await this.api.get("/console/api/approvals");
    const items = found.approvals || [];
    clear($("approvals")).append(...items.map((a) => this.approvalItem(a, true)));
    $("approvals-empty").hidden = items.length > 0;
  }

  approvalItem(a, withOpen) {
    const what = a.tool === "refund_order"
      ? "Refund " + a.amount + " for order " + a.args.order_id
      : a.tool + " " + a.amount;
    const label = what + " (" + (a.customer || "conversation " + a.conversation_id) + ")";
    return el("li", { "data-approval": a.approval_id },
      el("div", { class: "who", text: what }),
      el("div", { class: "what", text: [a.customer, a.args.reason, time(a.requested_at)].filter(Boolean).join(" · ") }),
      el("div", { class: "row" },
        a.may_decide ? el("button", { type: "button", class: "primary", "aria-label": "Approve: " + label, onclick: () => this.decide(a, true) }, "Approve") : null,
        a.may_decide ? el("button", { type: "button", class: "danger", "aria-label": "Decline: " + label, onclick: () => this.decide(a, false) }, "Decline") : null,
        withOpen ? el("button", { type: "button", "aria-label": "Open: " + label, onclick: () => this.open(a.conversation_id) }, "Open") : null,
      ));
  }

  async decide(a, approve) {
    try {
      const done = await this.api.post(
        "/console/api/conversations/" + a.conversation_id + "/approvals/" + encodeURIComponent(a.approval_id),
        { approve });
      this.announce((approve ? "Approved" : "Declined") + ": the customer is told.");
      if (this.pane.id === a.conversation_id && done.message) this.pane.addMessage(done.message);
    } catch (e) {
      this.fail(e);
    }
    await Promise.all([this.loadApprovals(), this.pane.loadApprovals()]).catch((e) => this.fail(e));
  }

  // ------------------------------------------------------------ transfers
  async loadDirectory() {
    this.directory = await this.api.get("/console/api/directory");
    this.renderOffers();
  }

  repName(id) {
    const rep = this.directory.reps.find((r) => r.id === id);
    return rep ? rep.display_name : "rep #" + id;
  }

  fillTargets(select) {
    const keep = select.value;
    clear(select).append(
      el("option", { value: "", text: "Choose a queue or a rep" }),
      el("optgroup", { label: "Queues" }, this.directory.queues.map((q) =>
        el("option", { value: "queue:" + q.name, text: q.name + " queue (" + q.waiting + " waiting)" }))),
      el("optgroup", { label: "Reps" }, this.directory.reps.map((r) =>
        el("option", { value: "rep:" + r.id, text: r.display_name + " (" + r.presence + ")" }))),
    );
    select.value = keep;
  }

  // --------------------------------------------------------------- offers
  async open(id) {
    this.unread.delete(id);
    try {
      await this.pane.open(id);
      this.renderHeld();
    } catch (e) {
      this.fail(e);
    }
  }

  async accept(offerId) {
    try {
      const conv = await this.api.post("/console/api/offers/" + offerId + "/accept");
      this.announce("Accepted: conversation " + conv.id + " is yours.");
      await this.pane.open(conv.id, { focus: false });
      this.refresh();
      $("reply-text").focus();
    } catch (e) {
      this.fail(e);
      this.refresh();
    }
  }

  async decline(offerId) {
    try {
      await this.api.post("/console/api/offers/" + offerId + "/decline");
      this.announce("Offer declined.");
      if (this.pane.view && (this.pane.view.offers || []).some((o) => o.offer_id === offerId)) this.pane.shut();
      this.refresh();
    } catch (e) {
      this.fail(e);
    }
  }

  // -------------------------------------------------------------- helpers
  announce(text) {
    const node = $("announcer");
    node.textContent = "";
    window.setTimeout(() => { node.textContent = text; }, 30); // re-read even if the same
  }

  fail(e) {
    if (e instanceof Unauthorized) return;
    const node = $("console-error");
    node.textContent = (e && e.message) || String(e);
    window.clearTimeout(this.errorTimer);
    this.errorTimer = window.setTimeout(() => { node.textContent = ""; }, 10000);
  }
}

new Console().start();
