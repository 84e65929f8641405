// The console's conversation search (closed ones included) and its keyboard
// shortcuts: "/" focuses the search, "?" lists the shortcuts.

import { channelLabel, clear, el, stateLabel, time } from "./render.js";

const $ = (id) => document.getElementById(id);

function typing(target) {
  return target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement ||
    target instanceof HTMLSelectElement || (target && target.isContentEditable);
}

export class Search {
  // app: the console (api, pane, fail)
  constructor(app) {
    this.app = app;
    $("search-form").addEventListener("submit", (ev) => {
      ev.preventDefault();
      this.run();
    });
    document.addEventListener("keydown", (ev) => this.key(ev));
  }

  async run() {
    const params = new URLSearchParams();
    const text = $("search-text").value.trim();
    if (text) params.set("q", text);
    if ($("search-state").value) params.set("state", $("search-state").value);
    if ($("search-label").value) params.set("label", $("search-label").value);
    let data;
    try {
      data = await this.app.api.get("/console/api/conversations?" + params);
    } catch (e) {
      this.app.fail(e);
      return;
    }
    const list = clear($("search-results"));
    $("search-empty").hidden = data.conversations.length > 0;
    for (const c of data.conversations) {
      const label = `${c.customer || "Customer " + c.customer_id} · ${channelLabel(c.channel)}`;
      list.append(el("li", {},
        el("button", { type: "button", class: "who", onclick: () => this.app.pane.open(c.id) }, label),
        el("div", { class: "what", text: `#${c.id} · ${stateLabel(c.state)} · ${time(c.created_at)}` }),
        (c.labels || []).length ? el("div", { class: "labels", "aria-label": "Labels" },
          c.labels.map((name) => this.app.work.chip(name))) : null));
    }
  }

  clear() {
    clear($("search-results"));
    $("search-empty").hidden = true;
    $("search-text").value = "";
  }

  key(ev) {
    if (ev.ctrlKey || ev.metaKey || ev.altKey || $("console-view").hidden) return;
    const dialog = $("shortcuts");
    if (ev.key === "?" && !typing(ev.target)) {
      ev.preventDefault();
      if (dialog.open) dialog.close();
      else dialog.showModal();
    } else if (ev.key === "/" && !typing(ev.target) && !dialog.open) {
      ev.preventDefault();
      $("search-text").focus();
    }
  }
}
