// Bar charts drawn by Chart.js (served by the gateway from static/vendor/, installed by
// `gateway assets`; never fetched from another site). Without it the same figures are
// shown as a table. Either way the figure has a text alternative with every count.

// bars(container, [[label, count], ...], {title}) draws vertical bars from zero; an
// empty period shows empty axes. Returns the Chart, or null when drawn as a table.
export function bars(container, data, { title = "" } = {}) {
  const summary = title + ": " + data.map(([l, n]) => `${l} ${n}`).join(", ");
  const Chart = globalThis.Chart;
  for (const old of container.querySelectorAll("canvas")) Chart?.getChart(old)?.destroy();
  if (typeof Chart !== "function") {
    container.replaceChildren(table(data, title));
    return null;
  }
  const canvas = document.createElement("canvas");
  canvas.setAttribute("role", "img");
  canvas.setAttribute("aria-label", summary);
  canvas.textContent = summary;
  container.replaceChildren(canvas);
  const style = getComputedStyle(container);
  const colour = (name) => style.getPropertyValue(name).trim();
  return new Chart(canvas, {
    type: "bar",
    data: {
      labels: data.map(([label]) => label),
      datasets: [{ label: title, data: data.map(([, n]) => n), backgroundColor: colour("--accent") }],
    },
    options: {
      animation: false, // drawn at once: a report is read, not watched
      aspectRatio: 1.8,
      plugins: { legend: { display: false } },
      scales: {
        x: { ticks: { color: colour("--muted") }, grid: { display: false } },
        y: { beginAtZero: true, suggestedMax: 1, ticks: { precision: 0, color: colour("--muted") } },
      },
    },
  });
}

function table(data, title) {
  const node = (tag, text) => {
    const n = document.createElement(tag);
    if (text !== undefined) n.textContent = text;
    return n;
  };
  const t = node("table");
  t.className = "figures";
  t.setAttribute("aria-label", title);
  const body = node("tbody");
  for (const [label, n] of data) {
    const row = node("tr");
    const th = node("th", label);
    th.scope = "row";
    row.append(th, node("td", String(n)));
    body.append(row);
  }
  t.append(body);
  return t;
}
