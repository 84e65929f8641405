// The console's JSON API: same origin, the HttpOnly session cookie, and the
// session's CSRF token in X-CSRF-Token on every write.

export class Unauthorized extends Error {}

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function describe(data, status) {
  if (data && typeof data.message === "string") return data.message;
  if (data && Array.isArray(data.message)) {
    return data.message.map((e) => (e && e.msg) || String(e)).join("; ");
  }
  return "The gateway answered " + status + ".";
}

export class Api {
  // onUnauthorized: the session is gone (logged out elsewhere, expired): show the login.
  constructor(onUnauthorized) {
    this.csrf = "";
    this.onUnauthorized = onUnauthorized;
  }

  async request(method, path, body, { session = true } = {}) {
    const headers = { Accept: "application/json" };
    const init = { method, headers, credentials: "same-origin", cache: "no-store" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      if (this.csrf) headers["X-CSRF-Token"] = this.csrf;
      init.body = JSON.stringify(body || {});
    }
    let resp;
    try {
      resp = await fetch(path, init);
    } catch (e) {
      throw new ApiError(0, "network", "The gateway cannot be reached.");
    }
    let data = null;
    if (resp.status !== 204) {
      try { data = await resp.json(); } catch (e) { data = null; }
    }
    if (resp.status === 401 && session) {
      this.csrf = "";
      this.onUnauthorized();
      throw new Unauthorized("log in first");
    }
    if (!resp.ok) throw new ApiError(resp.status, (data && data.error) || "error", describe(data, resp.status));
    return data;
  }

  get(path) { return this.request("GET", path); }

  post(path, body) { return this.request("POST", path, body); }

  async login(username, password) {
    const data = await this.request("POST", "/console/login", { username, password }, { session: false });
    this.csrf = data.csrf;
    return data;
  }

  async logout() {
    try {
      await this.request("POST", "/console/logout", {}, { session: false });
    } finally {
      this.csrf = "";
    }
  }
}
