// Bar charts as inline SVG, drawn with DOM calls (no library, nothing fetched):
// each bar's count is written on it, and the figure has a text alternative.

const NS = "http://www.w3.org/2000/svg";

function svg(tag, attrs, text) {
  const node = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = text;
  return node;
}

// bars(container, [[label, count], ...], {title}) draws vertical bars scaled to the
// largest count; an empty period shows empty axes.
export function bars(container, data, { title = "" } = {}) {
  const width = 40 + data.length * 36, height = 180, base = 150, top = 18;
  const max = Math.max(1, ...data.map(([, n]) => n));
  const root = svg("svg", { viewBox: `0 0 ${width} ${height}`, role: "img",
    "aria-label": title + ": " + data.map(([l, n]) => `${l} ${n}`).join(", ") });
  root.append(svg("line", { x1: 20, y1: base, x2: width - 10, y2: base, stroke: "#8a8f98" }));
  data.forEach(([label, n], i) => {
    const h = Math.round(((base - top) * n) / max);
    const x = 28 + i * 36;
    const bar = svg("rect", { class: "bar", x, y: base - h, width: 24, height: h });
    bar.append(svg("title", {}, `${label}: ${n}`));
    root.append(bar, svg("text", { class: "count", x: x + 12, y: base - h - 4, "text-anchor": "middle" }, String(n)),
      svg("text", { class: "axis", x: x + 12, y: base + 14, "text-anchor": "middle" }, label));
  });
  container.replaceChildren(root);
  return root;
}
