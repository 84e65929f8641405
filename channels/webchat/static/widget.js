/*
 * Support chat widget. Add it to a page with one script tag:
 *
 *   <script src="https://support.example.com/widget.js" defer></script>
 *
 * A site that knows its signed-in user adds data-user-id, data-user-name and
 * data-user-signature (hex HMAC-SHA256 of the id with the shared secret).
 * data-greeting replaces the greeting the panel opens with.
 *
 * It speaks the protocol in channels/webchat/PROTOCOL.md: the visitor token is
 * kept in localStorage so a reload is the same visitor; unacknowledged
 * messages wait in an outbox (also in localStorage) and are resent with the
 * same client_id after every reconnect; messages are de-duplicated by seq and
 * client_id. No build step, no dependencies.
 */
(function () {
  "use strict";

  var script = document.currentScript;
  if (!script || !script.src || window.__supportChatLoaded) return;
  window.__supportChatLoaded = true;

  // The gateway is wherever this script came from (the embedding site is elsewhere).
  var src = new URL(script.src, window.location.href);
  var basePath = src.pathname.replace(/[^/]*$/, "");
  var wsUrl = (src.protocol === "https:" ? "wss://" : "ws://") + src.host + basePath + "webchat/ws";

  var data = script.dataset || {};
  var user = data.userId
    ? { id: data.userId, name: data.userName || null, signature: data.userSignature || "" }
    : null;
  var prefix = "supportchat:" + src.host + ":";
  var who = user ? "user:" + user.id : "anon";

  // ---------------------------------------------------------------- storage
  function load(key, fallback) {
    try {
      var raw = window.localStorage.getItem(prefix + key);
      return raw === null ? fallback : JSON.parse(raw);
    } catch (e) {
      return fallback; // storage disabled (private mode): the widget still works
    }
  }
  function save(key, value) {
    try {
      window.localStorage.setItem(prefix + key, JSON.stringify(value));
    } catch (e) { /* storage full or disabled: keep going in memory */ }
  }

  var token = load("token", null);
  var outbox = load("outbox:" + who, []); // [{client_id, text}] not yet acknowledged
  var seenSeq = load("last_seq:" + who, 0); // newest seq the visitor has seen (unread badge)
  var lastSeq = 0; // newest seq shown on this page
  var haveHistory = false; // after the first history on this page, reconnects resume
  var maxChars = 2000;
  var ws = null;
  var ready = false;
  var attempt = 0;
  var reconnectTimer = null;
  var typingTimer = null;
  var unread = 0;
  var shown = {}; // seq -> true
  var byClientId = {}; // client_id -> <li>

  function newClientId() {
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) {
      return ("0" + b.toString(16)).slice(-2);
    }).join("");
  }

  // -------------------------------------------------------------------- DOM
  var host = document.createElement("div");
  host.setAttribute("data-support-chat", "");
  // A shadow root keeps the site's CSS and ours apart.
  var root = host.attachShadow ? host.attachShadow({ mode: "open" }) : host;
  root.innerHTML =
    "<style>" +
    ":host{all:initial}" +
    ".sc{position:fixed;right:20px;bottom:20px;z-index:2147483000;display:flex;flex-direction:column;align-items:flex-end;font:15px/1.4 system-ui,sans-serif;color:#1b1b1b}" +
    ".launcher{background:#1f5fbf;color:#fff;border:0;border-radius:24px;padding:12px 18px;font:inherit;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.25)}" +
    ".launcher:focus-visible,button:focus-visible,textarea:focus-visible{outline:3px solid #f2a900;outline-offset:2px}" +
    ".badge{display:inline-block;min-width:1.4em;margin-left:.5em;border-radius:1em;background:#fff;color:#1f5fbf;font-weight:700;text-align:center}" +
    ".panel{width:min(360px,calc(100vw - 40px));height:min(520px,calc(100vh - 100px));display:flex;flex-direction:column;background:#fff;border:1px solid #c8c8c8;border-radius:12px;box-shadow:0 4px 20px rgba(0,0,0,.2);margin-bottom:10px;overflow:hidden}" +
    ".panel[hidden]{display:none}" +
    "header{display:flex;align-items:center;gap:8px;padding:10px 12px;background:#1f5fbf;color:#fff}" +
    "header h2{font-size:16px;margin:0;flex:1}" +
    ".status{font-size:12px;opacity:.9}" +
    ".close{background:transparent;color:#fff;border:0;font-size:20px;cursor:pointer;padding:0 6px}" +
    "ol{list-style:none;margin:0;padding:12px;flex:1;overflow-y:auto;display:flex;flex-direction:column;gap:6px}" +
    "li{max-width:85%;padding:8px 10px;border-radius:10px;white-space:pre-wrap;overflow-wrap:anywhere}" +
    "li.customer{align-self:flex-end;background:#1f5fbf;color:#fff}" +
    "li.agent,li.rep,li.greeting{align-self:flex-start;background:#eef1f5}" +
    "li.system,li.notice,li.error{align-self:center;background:transparent;color:#555;font-size:13px;font-style:italic}" +
    ".who{display:block;font-size:12px;font-weight:600;color:#333}" +
    "time{display:block;font-size:11px;opacity:.75;text-align:right}" +
    ".rate button{font:inherit;min-width:2.2em;margin:4px 4px 0 0;padding:4px 6px;border:1px solid #1f5fbf;border-radius:6px;background:#fff;color:#1f5fbf;cursor:pointer}" +
    "li.error{color:#a4000f}" +
    "li.pending{opacity:.65}" +
    "li.failed{outline:2px solid #a4000f}" +
    ".sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}" +
    ".typing{margin:0 12px 6px;font-size:13px;color:#555;min-height:1.2em}" +
    "form{display:flex;gap:6px;padding:10px;border-top:1px solid #e0e0e0}" +
    "textarea{flex:1;resize:none;font:inherit;padding:6px 8px;border:1px solid #999;border-radius:6px;min-height:2.4em}" +
    ".send{background:#1f5fbf;color:#fff;border:0;border-radius:6px;padding:0 14px;font:inherit;cursor:pointer}" +
    "</style>" +
    '<div class="sc">' +
    '<section class="panel" id="sc-panel" role="region" aria-labelledby="sc-title" hidden>' +
    '<header><h2 id="sc-title">Support chat</h2>' +
    '<span class="status" role="status">Connecting…</span>' +
    '<button type="button" class="close" aria-label="Close chat">×</button></header>' +
    '<ol class="log" role="log" aria-live="polite" aria-label="Messages"></ol>' +
    '<p class="typing" aria-live="polite"></p>' +
    '<form><label class="sr" for="sc-input">Your message</label>' +
    '<textarea id="sc-input" rows="2" placeholder="Type your message…"></textarea>' +
    '<button type="submit" class="send">Send</button></form>' +
    "</section>" +
    '<button type="button" class="launcher" aria-expanded="false" aria-controls="sc-panel">' +
    'Chat with us<span class="badge" hidden></span></button>' +
    "</div>";

  var q = function (sel) { return root.querySelector(sel); };
  var panel = q(".panel");
  var launcher = q(".launcher");
  var badge = q(".badge");
  var closeBtn = q(".close");
  var list = q(".log");
  var statusEl = q(".status");
  var typingEl = q(".typing");
  var form = q("form");
  var input = q("textarea");

  var AUTHOR_LABEL = { customer: "You", agent: "Assistant", rep: "Support", system: "Notice" };
  // Who answers and how soon, before anything is written (a site may say it its way).
  var GREETING = data.greeting ||
    "Hi! Our virtual assistant answers here, usually within a few seconds. " +
    "Ask for a person at any time: a member of our team takes over with everything you wrote.";
  // A closing message's signed rating link (`/rate/<token>`, PROTOCOL.md): shown as the
  // 1-5 buttons, not as a raw URL.
  var RATE_LINK = /\s*(?:Rate us:\s*)?(https?:\/\/\S+\/rate\/[^\s\/]+)\s*$/;
  var ratingShown = {}; // url -> true: one control per rating link

  function isOpen() { return !panel.hidden; }

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", open ? "true" : "false");
    try { window.sessionStorage.setItem(prefix + "open", open ? "1" : "0"); } catch (e) { /* ignore */ }
    if (open) {
      markSeen();
      input.focus();
      list.scrollTop = list.scrollHeight;
    } else {
      launcher.focus();
    }
  }

  function markSeen() {
    unread = 0;
    badge.hidden = true;
    if (lastSeq > seenSeq) { seenSeq = lastSeq; save("last_seq:" + who, seenSeq); }
  }

  function bump(author, seq) {
    if (author === "customer" || seq <= seenSeq) return;
    if (isOpen() && document.visibilityState !== "hidden") { markSeen(); return; }
    unread += 1;
    badge.textContent = String(unread);
    badge.hidden = false;
    badge.setAttribute("aria-label", unread + " unread");
  }

  function line(cls, text) {
    var li = document.createElement("li");
    li.className = cls;
    li.textContent = text;
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
    return li;
  }

  // A closed conversation's 1-5 rating: one keyboard-reachable button per score,
  // in `li` (the closing message), or in a line of its own (a `rating` frame).
  function rating(url, text, scale, li) {
    if (ratingShown[url]) return;
    ratingShown[url] = true;
    li = li || line("notice", text || "How did we do?");
    var group = document.createElement("div");
    group.className = "rate";
    group.setAttribute("role", "group");
    group.setAttribute("aria-label", "Rate this conversation from 1 to 5");
    if (load("rated:" + url, false)) {
      group.textContent = "Thank you for your rating!";
      li.appendChild(group);
      return;
    }
    scale = scale || 5;
    for (var n = 1; n <= scale; n++) {
      var b = document.createElement("button");
      b.type = "button";
      b.textContent = String(n);
      b.setAttribute("aria-label", n + " out of " + scale);
      b.onclick = (function (score) {
        return function () {
          // The gateway answers this cross-origin POST with CORS headers (an allowed site).
          fetch(url, { method: "POST", body: new URLSearchParams({ score: String(score) }) })
            .then(function (r) {
              if (r.ok) save("rated:" + url, true);
              group.textContent = r.ok ? "Thank you for your rating!"
                : r.status === 404 ? "This conversation can no longer be rated."
                : "Sorry, that did not work.";
            })
            .catch(function () { group.textContent = "Sorry, that did not work."; });
        };
      })(n);
      group.appendChild(b);
    }
    li.appendChild(group);
  }

  function clock(iso) {
    var when = new Date(iso);
    if (isNaN(when.getTime())) return null;
    var t = document.createElement("time");
    t.setAttribute("datetime", iso);
    var sr = document.createElement("span");
    sr.className = "sr";
    sr.textContent = ", at ";
    t.appendChild(sr);
    t.appendChild(document.createTextNode(
      when.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })));
    t.title = when.toLocaleString();
    return t;
  }

  function greet() {
    var li = document.createElement("li");
    li.className = "greeting";
    li.textContent = GREETING;
    list.insertBefore(li, list.firstChild);
  }

  // A message: who wrote it (shown for the assistant and a person; read out for all),
  // its text, and when it was stored (`ts`; a pending message gets it once stored).
  function bubble(author, text, name, ts) {
    var li = document.createElement("li");
    li.className = author;
    var label = document.createElement("span");
    var who = (author === "rep" && name) || AUTHOR_LABEL[author] || author;
    if (author === "agent" || author === "rep") {
      label.className = "who";
      label.textContent = who;
      var colon = document.createElement("span");
      colon.className = "sr";
      colon.textContent = ": ";
      label.appendChild(colon);
    } else {
      label.className = "sr";
      label.textContent = who + ": ";
    }
    li.appendChild(label);
    var link = author === "system" ? RATE_LINK.exec(text) : null;
    li.appendChild(document.createTextNode(link ? text.slice(0, link.index) : text));
    if (link) rating(link[1], null, 5, li);
    if (ts) stamp(li, ts);
    return li;
  }

  function stamp(li, ts) {
    if (li.querySelector("time")) return;
    var t = clock(ts);
    if (t) li.appendChild(t);
  }

  // Show a stored message once, in seq order; confirm a pending bubble with its client_id.
  function addMessage(m) {
    if (shown[m.seq]) return;
    shown[m.seq] = true;
    if (m.seq > lastSeq) lastSeq = m.seq;
    var li = m.client_id ? byClientId[m.client_id] : null;
    if (li) {
      li.classList.remove("pending");
      dropFromOutbox(m.client_id);
      if (m.ts) stamp(li, m.ts);
    } else {
      li = bubble(m.author, m.text, m.author_name, m.ts);
      if (m.client_id) byClientId[m.client_id] = li;
    }
    li.setAttribute("data-seq", String(m.seq));
    if (!li.parentNode) {
      // Before the first later message, else before pending bubbles (they are newest).
      var next = null;
      var items = list.children;
      for (var i = 0; i < items.length; i++) {
        var s = Number(items[i].getAttribute("data-seq"));
        if ((s && s > m.seq) || (!s && items[i].classList.contains("pending"))) { next = items[i]; break; }
      }
      list.insertBefore(li, next);
    }
    list.scrollTop = list.scrollHeight;
    bump(m.author, m.seq);
  }

  // Forget what is shown (the server sends a fresh history); unsent messages stay.
  function clearMessages() {
    var pending = byClientId;
    list.textContent = "";
    greet();
    shown = {};
    ratingShown = {};
    byClientId = {};
    lastSeq = 0;
    outbox.forEach(function (o) {
      var li = pending[o.client_id];
      if (li && li.classList.contains("pending")) {
        byClientId[o.client_id] = li;
        list.appendChild(li);
      } else {
        showPending(o);
      }
    });
  }

  function showPending(o) {
    var li = bubble("customer", o.text);
    li.classList.add("pending");
    byClientId[o.client_id] = li;
    list.appendChild(li);
    list.scrollTop = list.scrollHeight;
  }

  function dropFromOutbox(clientId) {
    var before = outbox.length;
    outbox = outbox.filter(function (o) { return o.client_id !== clientId; });
    if (outbox.length !== before) save("outbox:" + who, outbox);
  }

  function setStatus(text) { statusEl.textContent = text; }

  // ------------------------------------------------------------- protocol
  function send(frame) {
    if (ws && ws.readyState === 1) ws.send(JSON.stringify(frame));
  }

  function flushOutbox() {
    outbox.forEach(function (o) { send({ type: "message", text: o.text, client_id: o.client_id }); });
  }

  function onFrame(f) {
    switch (f.type) {
      case "welcome":
        token = f.visitor_token;
        save("token", token);
        if (typeof f.max_message_chars === "number") maxChars = f.max_message_chars;
        if (f.last_seq < lastSeq) clearMessages(); // the server does not know what we show
        break;
      case "history":
        if (f.reset) clearMessages();
        (f.messages || []).forEach(addMessage);
        if (f.complete) {
          haveHistory = true;
          ready = true;
          attempt = 0;
          setStatus("Online");
          flushOutbox();
        }
        break;
      case "message":
        addMessage(f);
        if (f.author !== "customer") showTyping(false);
        break;
      case "ack":
        onAck(f);
        break;
      case "typing":
        showTyping(f.active);
        break;
      case "notice":
        line("notice", f.text);
        break;
      case "rating":
        if (typeof f.url === "string") rating(f.url, f.text, f.scale, null);
        break;
      case "error":
        onError(f);
        break;
      default:
        break; // a newer server's frame: ignore
    }
  }

  // Stored: stop resending. The bubble normally got its seq from the echo already.
  function onAck(f) {
    dropFromOutbox(f.client_id);
    var li = byClientId[f.client_id];
    if (!li) return;
    li.classList.remove("pending");
    if (!li.getAttribute("data-seq")) li.setAttribute("data-seq", String(f.seq));
  }

  function onError(f) {
    if (f.client_id && (f.code === "unavailable" || f.code === "internal" || f.code === "rate_limited")) {
      // Not stored: it stays in the outbox and goes again shortly.
      window.setTimeout(function () {
        var o = outbox.filter(function (x) { return x.client_id === f.client_id; })[0];
        if (o && ready) send({ type: "message", text: o.text, client_id: o.client_id });
      }, 3000);
      return;
    }
    if (f.client_id) {
      dropFromOutbox(f.client_id);
      var li = byClientId[f.client_id];
      if (li) { li.classList.remove("pending"); li.classList.add("failed"); }
    }
    if (f.code === "invalid_signature") return; // the site's problem; chat on anonymously
    line("error", "Not sent: " + f.message);
  }

  function showTyping(active) {
    window.clearTimeout(typingTimer);
    typingEl.textContent = active ? "Support is typing…" : "";
    // A lost "stopped typing" must not leave the indicator up forever.
    if (active) typingTimer = window.setTimeout(function () { showTyping(false); }, 15000);
  }

  function connect() {
    reconnectTimer = null;
    ready = false;
    setStatus(attempt ? "Reconnecting…" : "Connecting…");
    var sock;
    try {
      sock = new WebSocket(wsUrl);
    } catch (e) {
      scheduleReconnect();
      return;
    }
    ws = sock;
    sock.onopen = function () {
      send({ type: "hello", visitor_token: token, user: user, last_seq: haveHistory ? lastSeq : null });
    };
    sock.onmessage = function (ev) {
      var f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (f && typeof f.type === "string") onFrame(f);
    };
    sock.onclose = function () {
      if (ws !== sock) return;
      ws = null;
      ready = false;
      showTyping(false);
      setStatus("Offline, reconnecting…");
      scheduleReconnect();
    };
  }

  function scheduleReconnect() {
    if (reconnectTimer) return;
    // Exponential backoff with jitter, so a restarted gateway is not stampeded.
    var delay = Math.min(15000, 500 * Math.pow(2, attempt)) * (0.5 + Math.random() / 2);
    attempt += 1;
    reconnectTimer = window.setTimeout(connect, delay);
  }

  // ------------------------------------------------------------------ input
  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var text = input.value.trim();
    if (!text) return;
    if (text.length > maxChars) {
      line("error", "Messages are limited to " + maxChars + " characters.");
      return;
    }
    var o = { client_id: newClientId(), text: text };
    outbox.push(o);
    save("outbox:" + who, outbox);
    showPending(o);
    input.value = "";
    stopTyping();
    if (ready) send({ type: "message", text: o.text, client_id: o.client_id });
  });
  // "typing" at most every 3 s while keys are pressed; stopped after 5 s idle or on send.
  var typingSentAt = 0, idleTimer = null;
  function stopTyping() {
    window.clearTimeout(idleTimer);
    if (typingSentAt) send({ type: "typing", active: false });
    typingSentAt = 0;
  }
  input.addEventListener("input", function () {
    if (!ready || !input.value) return;
    var now = Date.now();
    if (now - typingSentAt > 3000) { send({ type: "typing", active: true }); typingSentAt = now; }
    window.clearTimeout(idleTimer);
    idleTimer = window.setTimeout(stopTyping, 5000);
  });
  input.addEventListener("keydown", function (ev) {
    if (ev.key === "Enter" && !ev.shiftKey && !ev.isComposing) {
      ev.preventDefault();
      if (typeof form.requestSubmit === "function") form.requestSubmit();
      else form.dispatchEvent(new Event("submit", { cancelable: true }));
    }
  });
  root.addEventListener("keydown", function (ev) {
    if (ev.key === "Escape" && isOpen()) setOpen(false);
  });
  launcher.addEventListener("click", function () { setOpen(!isOpen()); });
  closeBtn.addEventListener("click", function () { setOpen(false); });
  window.addEventListener("online", function () {
    if (!ws && reconnectTimer) { window.clearTimeout(reconnectTimer); connect(); }
  });

  function start() {
    document.body.appendChild(host);
    greet();
    outbox.forEach(showPending);
    var wasOpen = false;
    try { wasOpen = window.sessionStorage.getItem(prefix + "open") === "1"; } catch (e) { /* ignore */ }
    if (wasOpen) {
      panel.hidden = false;
      launcher.setAttribute("aria-expanded", "true");
    }
    connect();
  }
  if (document.body) start();
  else document.addEventListener("DOMContentLoaded", start);
})();
