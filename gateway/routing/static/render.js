// DOM helpers and the console's building blocks. Everything the gateway sends
// is shown as text (textContent), never parsed as HTML.

export const CHANNEL = {
  webchat: "Chat", sms: "SMS", email: "Email", phone: "Call", console: "Console", system: "System",
};
const AUTHOR = { customer: "Customer", agent: "Agent", rep: "Rep", system: "System" };
const VERIFIED = {
  none: "not verified", signed_token: "this browser", hmac: "signed in on the site",
  caller_id: "caller ID", sender: "sender address", otp: "confirmed by code",
  backend: "on the account",
};
const STATE = { bot: "with the agent", queued: "waiting in a queue", with_rep: "with a rep", closed: "closed" };

// el("li", {class: "x", aria-label: "y", onclick: fn}, child, "text", ...)
export function el(tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

export function clear(node) {
  node.replaceChildren();
  return node;
}

export function time(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const today = new Date();
  const clock = d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
  if (d.toDateString() === today.toDateString()) return clock;
  return d.toLocaleDateString([], { month: "short", day: "numeric" }) + " " + clock;
}

export function percent(x) {
  return typeof x === "number" ? Math.round(x * 100) + "%" : "";
}

export function stateLabel(state) {
  return STATE[state] || state || "";
}

export function channelLabel(channel) {
  return CHANNEL[channel] || channel || "";
}

export function customerName(customer, fallbackId) {
  if (customer && customer.display_name) return customer.display_name;
  const ids = (customer && customer.identities) || [];
  const contact = ids.find((i) => i.kind === "phone" || i.kind === "email");
  if (contact) return contact.value;
  return "Customer " + (customer ? "#" + customer.id : "of conversation " + fallbackId);
}

// One timeline entry. Private notes and other conversations look different;
// a call's words say how sure the recogniser was.
export function messageItem(m, conversationId) {
  const internal = m.direction === "internal";
  const classes = ["msg", m.direction, "author-" + m.author];
  if (m.status === "failed" || m.status === "undelivered") classes.push("failed");
  if (m.conversation_id !== conversationId) classes.push("other-conversation");
  const who = internal ? "Private note" : AUTHOR[m.author] || m.author;
  const head = el("span", { class: "head" },
    el("span", { class: "author", text: who }),
    el("span", { class: "channel", text: channelLabel(m.channel) }),
    el("time", { datetime: m.created_at, text: time(m.created_at) }),
  );
  const extras = [];
  if (m.channel === "phone" && m.author === "customer") {
    extras.push(typeof m.confidence === "number"
      ? "Call transcript, " + percent(m.confidence) + " sure"
      : "Call transcript");
  }
  if (m.conversation_id !== conversationId) extras.push("earlier conversation #" + m.conversation_id);
  if (m.status && m.direction === "outbound" && m.channel !== "webchat") {
    extras.push("delivery: " + m.status + (m.error_code ? " (" + m.error_code + ")" : ""));
  }
  for (const a of m.attachments || []) {
    const size = typeof a.size === "number" ? ", " + Math.ceil(a.size / 1024) + " KB" : "";
    const refused = a.refused ? ", not kept: " + a.refused.replace(/_/g, " ") : "";
    extras.push("Attachment: " + (a.filename || a.content_type) + size + refused);
  }
  return el("li", { class: classes.join(" "), "data-id": m.id, "data-seq": m.seq },
    head,
    el("span", { class: "sr", text: ": " }),
    el("span", { class: "text", text: m.text }),
    extras.map((x) => el("span", { class: "extra" }, el("br"), x)),
  );
}

function list(items) {
  if (!items || !items.length) return el("span", { text: "—" });
  return el("ul", {}, items.map((i) => el("li", { text: i })));
}

export function briefBlock(brief) {
  if (!brief) return el("p", { class: "empty", text: "No handoff brief: the agent did not hand over." });
  return el("dl", { class: "brief" },
    el("dt", { text: "Needs" }), el("dd", { text: brief.need }),
    el("dt", { text: "Tried" }), el("dd", {}, list(brief.tried)),
    el("dt", { text: "Missing" }), el("dd", {}, list(brief.missing)),
    el("dt", { text: "Next step" }), el("dd", { text: brief.next_step }),
    el("dt", { text: "Confidence" }), el("dd", { text: percent(brief.confidence) }),
    el("dt", { text: "Sentiment" }),
    el("dd", { class: "sentiment-" + brief.sentiment, text: brief.sentiment }),
    brief.reason ? [el("dt", { text: "Why" }), el("dd", { text: brief.reason })] : null,
  );
}

export function customerBlock(customer, conversation) {
  const ids = (customer.identities || []).map((i) =>
    el("li", {},
      el("span", { text: i.kind + ": " + i.value }), " ",
      el("span", { class: "verified", text: "(" + (VERIFIED[i.verified] || i.verified) + ")" })));
  return el("div", {},
    el("dl", { class: "brief" },
      el("dt", { text: "Name" }), el("dd", { text: customer.display_name || "unknown" }),
      el("dt", { text: "Account" }), el("dd", { text: customer.account_ref || "none linked" }),
      el("dt", { text: "Customer" }), el("dd", { text: "#" + customer.id + " since " + time(customer.created_at) }),
      el("dt", { text: "Channels" }),
      el("dd", { text: (conversation.channels || []).map(channelLabel).join(", ") }),
    ),
    el("h4", { class: "sr", text: "Identities" }),
    el("ul", { class: "identities", "aria-label": "Identities" }, ids),
  );
}

export function eventItem(e) {
  const data = Object.entries(e.data || {})
    .filter(([, v]) => v !== null && v !== "" && typeof v !== "object")
    .slice(0, 6)
    .map(([k, v]) => k + "=" + v)
    .join(", ");
  return el("li", {}, el("time", { datetime: e.created_at, text: time(e.created_at) }), " ",
    el("strong", { text: e.kind }), data ? " " + data : "");
}

const CALL_STEPS = {
  requested: "Transfer requested",
  ringing: "Ringing",
  briefing: "The rep hears the brief",
  connected: "Connected to a rep",
  completed: "Call over",
  callback_offered: "Nobody took it: callback offered",
  abandoned: "The caller hung up",
  failed: "The transfer failed",
  rep_failed: "A rep did not take it",
};

export function callStep(step, data) {
  let text = CALL_STEPS[step] || step;
  if (data.rep_name && step !== "requested") text += " (" + data.rep_name + ")";
  if (data.outcome) text += ": " + data.outcome;
  if (data.reason) text += ": " + data.reason;
  return text;
}
