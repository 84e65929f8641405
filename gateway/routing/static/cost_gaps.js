// The reports page's cost section and help-centre gaps (docs/reports.md).

import { bars } from "./charts.js";
import { channelLabel, clear, el } from "./render.js";

const $ = (id) => document.getElementById(id);
const SHORT = { llm: "LLM", stt: "STT", tts: "TTS", sms: "SMS", call: "Calls", rep: "Reps" };
const KIND = { llm: "Language model", stt: "Speech recognised", tts: "Speech synthesised",
  sms: "SMS", call: "Calls", rep: "Reps' time" };

function money(x, currency) {
  if (typeof x !== "number") return "–";
  // Small amounts (a turn's tokens) keep their digits; others show cents.
  const digits = x !== 0 && Math.abs(x) < 0.1 ? 4 : 2;
  return `${x.toFixed(digits)} ${currency}`;
}

export function showCost(cost) {
  const c = cost.currency;
  $("cost-total").textContent = `Total ${money(cost.total, c)}` +
    (cost.per_conversation === null ? "" : ` · ${money(cost.per_conversation, c)} per conversation`);
  bars($("chart-cost"), Object.entries(cost.by_kind).map(([k, v]) => [SHORT[k] || k, Number(v.toFixed(2))]),
    { title: `Cost by kind (${c})` });
  const body = clear($("cost-resolved").tBodies[0]);
  for (const [channel, ways] of Object.entries(cost.by_channel)) {
    body.append(el("tr", {}, el("th", { scope: "row", text: channelLabel(channel) }),
      el("td", { text: money(ways.agent.per_resolved, c) }), el("td", { text: String(ways.agent.resolved) }),
      el("td", { text: money(ways.rep.per_resolved, c) }), el("td", { text: String(ways.rep.resolved) })));
  }
  const q = cost.quantities;
  const amounts = {
    llm: `${q.llm_prompt_tokens} prompt + ${q.llm_completion_tokens} completion tokens`,
    stt: `${q.stt_seconds} s`, tts: `${q.tts_seconds} s`, sms: `${q.sms_segments} segments`,
    call: `${q.call_minutes} min`, rep: `${q.rep_minutes} min`,
  };
  const usage = clear($("cost-usage").tBodies[0]);
  for (const [kind, label] of Object.entries(KIND)) {
    usage.append(el("tr", {}, el("th", { scope: "row", text: label }),
      el("td", { text: amounts[kind] }), el("td", { text: money(cost.by_kind[kind], c) })));
  }
}

export async function showGaps(api, query) {
  const data = await api.get("/console/api/reports/gaps?" + query);
  $("gaps-summary").textContent = `${data.unanswered} of ${data.handed_over} handovers were ` +
    `questions the agent could not answer, in ${data.groups.length} groups.`;
  const list = clear($("gaps"));
  for (const g of data.groups) {
    const links = g.conversations.map((id) => el("a", { href: `/console#c=${id}`, text: `#${id}` }));
    list.append(el("li", {},
      el("span", { class: "question", text: `“${g.question}”` }), ` · ${g.count} conversation${g.count === 1 ? "" : "s"}`,
      g.questions.length ? el("div", { class: "more", text: "Also: " + g.questions.map((t) => `“${t}”`).join(" · ") }) : null,
      el("div", {}, links)));
  }
}
