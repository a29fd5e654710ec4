// Charts drawn as inline SVG, no library. Every chart is a figure with a text alternative:
// an accessible name and description on the SVG and the same numbers as a table.

import { h, percent, svg, uid } from "./dom.js";

const COLORS = {
  bar: "#1d4f91", // 8.6:1 on white
  second: "#a3470b", // 6.0:1 on white
  grid: "#767676",
  text: "#1a1a1a",
  suppressed: "#595959",
};

export const SUPPRESSED_TEXT = "Undertryckt";

function figure(title, description, chart, table) {
  const titleId = uid("chart-title");
  const descId = uid("chart-desc");
  chart.setAttribute("role", "img");
  chart.setAttribute("aria-labelledby", `${titleId} ${descId}`);
  chart.prepend(svg("title", { id: titleId }, title), svg("desc", { id: descId }, description));
  return h(
    "figure",
    { class: "chart" },
    h("figcaption", {}, h("span", { class: "chart-title" }, title), h("span", { class: "chart-desc" }, description)),
    chart,
    h("details", { class: "chart-table" }, h("summary", {}, `Visa siffrorna som tabell: ${title}`), table),
  );
}

function dataTable(caption, headers, rows) {
  return h(
    "table",
    { class: "table" },
    h("caption", { class: "visually-hidden" }, caption),
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", { scope: "col" }, x)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, h("th", { scope: "row" }, r[0]), r.slice(1).map((c) => h("td", {}, c))))),
  );
}

function suppressedMark(x, y) {
  return svg(
    "text",
    { x, y, "font-size": "13", fill: COLORS.suppressed, "font-style": "italic", class: "suppressed-mark" },
    `${SUPPRESSED_TEXT} (för få för att visa)`,
  );
}

// rows: [{label, value (0..1) | null, suppressed, detail}]
export function horizontalBars({ title, description, rows }) {
  const labelWidth = 190;
  const plotWidth = 420;
  const rowHeight = 30;
  const top = 24;
  const height = top + rows.length * rowHeight + 10;
  const width = labelWidth + plotWidth + 60;
  const chart = svg("svg", {
    viewBox: `0 0 ${width} ${height}`,
    width: "100%",
    class: "chart-svg",
    "font-family": "system-ui, sans-serif",
  });
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    const x = labelWidth + tick * plotWidth;
    chart.append(
      svg("line", { x1: x, x2: x, y1: top - 6, y2: height - 8, stroke: COLORS.grid, "stroke-width": tick === 0 ? 1.5 : 0.5, "stroke-dasharray": tick === 0 ? null : "3 3" }),
      svg("text", { x, y: 14, "font-size": "12", "text-anchor": "middle", fill: COLORS.text }, `${tick * 100} %`),
    );
  }
  rows.forEach((row, i) => {
    const y = top + i * rowHeight;
    chart.append(svg("text", { x: labelWidth - 8, y: y + 19, "font-size": "13", "text-anchor": "end", fill: COLORS.text }, row.label));
    if (row.suppressed) {
      chart.append(
        svg("rect", { x: labelWidth + 1, y: y + 5, width: plotWidth - 2, height: rowHeight - 10, fill: "none", stroke: COLORS.suppressed, "stroke-dasharray": "4 3" }),
        suppressedMark(labelWidth + 10, y + 19),
      );
    } else if (row.value === null || row.value === undefined) {
      chart.append(svg("text", { x: labelWidth + 10, y: y + 19, "font-size": "13", fill: COLORS.suppressed }, "Inget underlag"));
    } else {
      const w = Math.max(1, Math.min(1, row.value) * plotWidth);
      chart.append(
        svg("rect", { x: labelWidth + 1, y: y + 5, width: w, height: rowHeight - 10, fill: COLORS.bar, class: "bar" }),
        svg("text", { x: labelWidth + w + 6, y: y + 19, "font-size": "13", fill: COLORS.text }, percent(row.value)),
      );
    }
  });
  const table = dataTable(
    title,
    ["", "Andel", "Underlag"],
    rows.map((r) => [
      r.label,
      r.suppressed ? SUPPRESSED_TEXT : r.value === null || r.value === undefined ? "Inget underlag" : percent(r.value),
      r.suppressed ? SUPPRESSED_TEXT : r.detail || "",
    ]),
  );
  return figure(title, description, chart, table);
}

// points: [{label, value (0..1) | null, suppressed}]
export function lineChart({ title, description, points }) {
  const left = 50;
  const right = 20;
  const top = 16;
  const plotHeight = 200;
  const step = Math.max(48, Math.min(90, 640 / Math.max(points.length, 1)));
  const width = left + right + step * Math.max(points.length - 1, 1) + 20;
  const height = top + plotHeight + 50;
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", class: "chart-svg", "font-family": "system-ui, sans-serif" });
  const yOf = (v) => top + plotHeight - v * plotHeight;
  for (const tick of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(
      svg("line", { x1: left, x2: width - right, y1: yOf(tick), y2: yOf(tick), stroke: COLORS.grid, "stroke-width": tick === 0 ? 1.5 : 0.5, "stroke-dasharray": tick === 0 ? null : "3 3" }),
      svg("text", { x: left - 6, y: yOf(tick) + 4, "font-size": "12", "text-anchor": "end", fill: COLORS.text }, `${tick * 100} %`),
    );
  }
  let segment = [];
  const segments = [];
  points.forEach((p, i) => {
    const x = left + 10 + i * step;
    chart.append(svg("text", { x, y: top + plotHeight + 20, "font-size": "12", "text-anchor": "middle", fill: COLORS.text }, p.label));
    if (p.suppressed || p.value === null || p.value === undefined) {
      // A gap in the line: suppressed (marked ×), or nobody to count that month (left empty).
      if (segment.length) segments.push(segment);
      segment = [];
      if (p.suppressed) {
        chart.append(
          svg("text", { x, y: top + plotHeight - 8, "font-size": "16", "text-anchor": "middle", fill: COLORS.suppressed, class: "suppressed-mark" }, "×"),
        );
      }
    } else {
      segment.push([x, yOf(Math.min(1, p.value))]);
    }
  });
  if (segment.length) segments.push(segment);
  for (const seg of segments) {
    if (seg.length > 1) {
      chart.append(svg("polyline", { points: seg.map(([x, y]) => `${x},${y}`).join(" "), fill: "none", stroke: COLORS.bar, "stroke-width": 2.5 }));
    }
    for (const [x, y] of seg) chart.append(svg("circle", { cx: x, cy: y, r: 4, fill: COLORS.bar, class: "point" }));
  }
  chart.append(
    svg("text", { x: left, y: height - 6, "font-size": "12", fill: COLORS.suppressed }, `× = ${SUPPRESSED_TEXT.toLowerCase()} värde (för få för att visa)`),
  );
  const table = dataTable(
    title,
    ["Period", "Andel"],
    points.map((p) => [p.label, p.suppressed ? SUPPRESSED_TEXT : p.value === null || p.value === undefined ? "Inget underlag" : percent(p.value)]),
  );
  return figure(title, description, chart, table);
}

// rows: [{label, with, without, suppressed}] – counts.
export function stackedBars({ title, description, rows, withLabel, withoutLabel }) {
  const labelWidth = 190;
  const plotWidth = 400;
  const rowHeight = 30;
  const top = 34;
  const height = top + rows.length * rowHeight + 10;
  const width = labelWidth + plotWidth + 150;
  const max = Math.max(1, ...rows.filter((r) => !r.suppressed).map((r) => (r.with || 0) + (r.without || 0)));
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width: "100%", class: "chart-svg", "font-family": "system-ui, sans-serif" });
  chart.append(
    svg("rect", { x: labelWidth, y: 4, width: 14, height: 14, fill: COLORS.bar }),
    svg("text", { x: labelWidth + 20, y: 16, "font-size": "13", fill: COLORS.text }, withLabel),
    svg("rect", { x: labelWidth + 190, y: 4, width: 14, height: 14, fill: COLORS.second }),
    svg("text", { x: labelWidth + 210, y: 16, "font-size": "13", fill: COLORS.text }, withoutLabel),
  );
  rows.forEach((row, i) => {
    const y = top + i * rowHeight;
    chart.append(svg("text", { x: labelWidth - 8, y: y + 19, "font-size": "13", "text-anchor": "end", fill: COLORS.text }, row.label));
    if (row.suppressed) {
      chart.append(
        svg("rect", { x: labelWidth + 1, y: y + 5, width: plotWidth - 2, height: rowHeight - 10, fill: "none", stroke: COLORS.suppressed, "stroke-dasharray": "4 3" }),
        suppressedMark(labelWidth + 10, y + 19),
      );
      return;
    }
    if (!row.with && !row.without) {
      chart.append(svg("text", { x: labelWidth + 10, y: y + 19, "font-size": "13", fill: COLORS.suppressed }, "Inget underlag"));
      return;
    }
    const w1 = ((row.with || 0) / max) * plotWidth;
    const w2 = ((row.without || 0) / max) * plotWidth;
    chart.append(
      svg("rect", { x: labelWidth + 1, y: y + 5, width: w1, height: rowHeight - 10, fill: COLORS.bar, class: "bar" }),
      svg("rect", { x: labelWidth + 1 + w1, y: y + 5, width: w2, height: rowHeight - 10, fill: COLORS.second, class: "bar" }),
      svg("text", { x: labelWidth + w1 + w2 + 8, y: y + 19, "font-size": "13", fill: COLORS.text }, `${row.with || 0} med, ${row.without || 0} utan`),
    );
  });
  const table = dataTable(
    title,
    ["", withLabel, withoutLabel],
    rows.map((r) => [r.label, r.suppressed ? SUPPRESSED_TEXT : String(r.with || 0), r.suppressed ? SUPPRESSED_TEXT : String(r.without || 0)]),
  );
  return figure(title, description, chart, table);
}
