// /console/ws: live console events. Every stored event carries a global `seq`;
// the socket is (re)opened with ?after=<the last seq seen>, so the server replays
// whatever happened while it was closed. Events at or below the last seq are
// dropped here, so nothing is shown twice either.

export class Live {
  // onEvent(frame): a stored event, once, in order. onFrame(frame): typing and
  // other transient frames. onStatus("connecting"|"live"|"reconnecting"|"stopped").
  // stillIn(): after a close, resolves true to reconnect (false: the session is gone).
  constructor({ onEvent, onFrame, onStatus, stillIn }) {
    this.onEvent = onEvent;
    this.onFrame = onFrame;
    this.onStatus = onStatus;
    this.stillIn = stillIn;
    this.lastSeq = 0;
    this.ws = null;
    this.stopped = true;
    this.attempt = 0;
    this.timer = null;
  }

  start(after) {
    this.stop();
    this.lastSeq = Math.max(0, Number(after) || 0);
    this.stopped = false;
    this.attempt = 0;
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.clearTimeout(this.timer);
    this.timer = null;
    const ws = this.ws;
    this.ws = null;
    if (ws) ws.close();
    if (this.onStatus) this.onStatus("stopped");
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  connect() {
    this.timer = null;
    if (this.stopped) return;
    this.onStatus(this.attempt ? "reconnecting" : "connecting");
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    const url = scheme + window.location.host + "/console/ws?after=" + this.lastSeq;
    let sock;
    try {
      sock = new WebSocket(url);
    } catch (e) {
      this.closed(null);
      return;
    }
    this.ws = sock;
    sock.onmessage = (ev) => {
      if (this.ws !== sock) return;
      let f;
      try { f = JSON.parse(ev.data); } catch (e) { return; }
      if (!f || typeof f.type !== "string") return;
      if (f.type === "event") {
        if (typeof f.seq !== "number" || f.seq <= this.lastSeq) return;
        this.lastSeq = f.seq;
        this.onEvent(f);
      } else if (f.type === "replayed") {
        if (typeof f.seq === "number" && f.seq > this.lastSeq) this.lastSeq = f.seq;
        this.attempt = 0;
        this.onStatus("live");
      } else if (f.type !== "hello" && f.type !== "pong") {
        this.onFrame(f);
      }
    };
    sock.onclose = () => this.closed(sock);
  }

  closed(sock) {
    if (sock !== null && this.ws !== sock) return; // an old socket, already replaced
    this.ws = null;
    if (this.stopped) return;
    this.onStatus("reconnecting");
    // A refused upgrade looks like any other close: ask the API whether we are still in.
    Promise.resolve().then(() => this.stillIn()).catch(() => true).then((ok) => {
      if (!ok || this.stopped || this.timer) return;
      // Backoff with jitter, so a restarted gateway is not stampeded.
      const delay = Math.min(10000, 300 * Math.pow(2, this.attempt)) * (0.5 + Math.random() / 2);
      this.attempt += 1;
      this.timer = window.setTimeout(() => this.connect(), delay);
    });
  }
}
