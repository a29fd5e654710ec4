// The RSS dashboard: the county's coverage indicators (aggregates only, never individual data),
// with charts, suppressed cells shown as such, and a CSV download.

import { api, ApiError, hasRole, orgName, session } from "./api.js";
import { horizontalBars, lineChart, stackedBars, SUPPRESSED_TEXT } from "./charts.js";
import { field, formValues, h, percent, section, select, today } from "./dom.js";
import { GENDER, GROUP_BY, INDICATOR, PHASE } from "./texts.js";
import { asyncForm, errorBox, loading } from "./ui.js";

const INDICATORS = Object.keys(INDICATOR);
const MONTHS = ["jan", "feb", "mar", "apr", "maj", "jun", "jul", "aug", "sep", "okt", "nov", "dec"];

// ---- reading the report

function isObject(x) {
  return x !== null && typeof x === "object" && !Array.isArray(x);
}

function firstOf(obj, keys) {
  for (const key of keys) if (obj && obj[key] !== undefined && obj[key] !== null) return obj[key];
  return undefined;
}

// One indicator cell → {value, numerator, denominator, n, suppressed}. A suppressed cell carries
// no numbers at all, so none can be shown by mistake.
export function readCell(raw) {
  if (raw === undefined) return null;
  if (raw === null || !isObject(raw)) return { suppressed: true, value: null, numerator: null, denominator: null, n: null };
  const suppressed = Boolean(raw.suppressed);
  const pick = (key) => (suppressed || raw[key] === undefined ? null : raw[key]);
  return { suppressed, value: pick("value"), numerator: pick("numerator"), denominator: pick("denominator"), n: pick("n") };
}

function cellsOf(obj) {
  if (!isObject(obj)) return {};
  const source = isObject(obj.indicators) ? obj.indicators : obj;
  const cells = {};
  for (const ind of INDICATORS) {
    const cell = readCell(source[ind]);
    if (cell) cells[ind] = cell;
  }
  return cells;
}

const DIMENSIONS = ["kommun", "gender", "age_band", "phase"];

// A group's label from its breakdown dimensions, e.g. "Huddinge kommun" or "Kvinna · 25-34".
function labelOf(row, groupBy) {
  const dims = Array.isArray(row.breakdown) && row.breakdown.length ? row.breakdown : DIMENSIONS.filter((d) => row[d] !== undefined && row[d] !== null);
  const parts = [];
  for (const dim of dims) {
    if (dim === "kommun") parts.push(row.kommun || (row.kommun_id ? orgName(row.kommun_id) : "Okänd kommun"));
    else if (dim === "gender") parts.push(GENDER[row.gender] || row.gender || "–");
    else if (dim === "phase") parts.push(PHASE[row.phase] || row.phase || "–");
    else if (dim === "age_band") parts.push(row.age_band ? `${row.age_band} år` : "–");
  }
  if (!parts.length) {
    const label = firstOf(row, ["label", "name", "month", "key"]);
    parts.push(String(label ?? "–"));
  }
  const key = row.kommun_id || row.month || parts.join("|");
  return { key, label: parts.join(" · "), dims: dims.join(","), groupBy };
}

function readRows(list, groupBy) {
  if (!Array.isArray(list)) return [];
  return list
    .filter(isObject)
    .map((row) => ({ ...labelOf(row, groupBy), cells: cellsOf(row) }))
    .filter((row) => !groupBy || row.dims === groupBy);
}

// The report (see GET /api/v1/reports/coverage): total, groups per breakdown and, with
// interval=month, a series of months each with its own total.
export function readReport(data, groupBy) {
  const out = { overall: {}, groups: [], trend: [] };
  if (!isObject(data)) return out;
  out.overall = cellsOf(data.total);
  out.groups = readRows(data.groups, groupBy);
  if (Array.isArray(data.series)) {
    out.trend = data.series.filter(isObject).map((period) => ({
      key: period.month || period.from,
      label: monthLabel(period.month || period.from),
      cells: cellsOf(period.total),
    }));
  }
  return out;
}

function monthLabel(key) {
  const m = String(key || "").match(/^(\d{4})-(\d{2})/);
  return m ? `${MONTHS[Number(m[2]) - 1]} ${m[1].slice(2)}` : String(key);
}

function cellText(cell, ind) {
  if (!cell) return "–";
  if (cell.suppressed) return SUPPRESSED_TEXT;
  if (ind === "median_days_to_first_meeting") {
    return cell.value === null ? "Inget underlag" : `${cell.value} dagar (${cell.n} planer)`;
  }
  if (cell.value === null || cell.denominator === 0) return "Inget underlag";
  const base = percent(cell.value);
  return cell.numerator !== null && cell.denominator !== null ? `${base} (${cell.numerator} av ${cell.denominator})` : base;
}

// ---- the view

function firstOfMonth(monthsBack) {
  const d = new Date();
  d.setDate(1);
  d.setMonth(d.getMonth() - monthsBack);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-01`;
}

function query(params) {
  return Object.entries(params)
    .filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`)
    .join("&");
}

function keyFigures(overall) {
  return h(
    "ul",
    { class: "key-figures" },
    INDICATORS.map((ind) => {
      const cell = overall[ind];
      return h(
        "li",
        { class: `key-figure${cell && cell.suppressed ? " is-suppressed" : ""}`, "data-indicator": ind },
        h("span", { class: "key-label" }, INDICATOR[ind]),
        h("span", { class: "key-value" }, cellText(cell, ind)),
      );
    }),
  );
}

function fullTable(groups, groupBy) {
  return h(
    "table",
    { class: "table report-table" },
    h("caption", { class: "visually-hidden" }, `Alla indikatorer per ${(GROUP_BY[groupBy] || groupBy).toLowerCase()}`),
    h("thead", {}, h("tr", {}, h("th", { scope: "col" }, GROUP_BY[groupBy] || groupBy), INDICATORS.map((ind) => h("th", { scope: "col" }, INDICATOR[ind])))),
    h(
      "tbody",
      {},
      groups.map((g) =>
        h(
          "tr",
          {},
          h("th", { scope: "row" }, g.label),
          INDICATORS.map((ind) => {
            const cell = g.cells[ind];
            return h("td", { class: cell && cell.suppressed ? "suppressed" : null }, cellText(cell, ind));
          }),
        ),
      ),
    ),
  );
}

async function downloadCsv(params, button, slot) {
  button.disabled = true;
  try {
    const { response } = await api("GET", `/api/v1/reports/coverage?${query(params)}`, { accept: "text/csv", raw: true });
    const blob = await response.blob();
    const url = URL.createObjectURL(new Blob([blob], { type: "text/csv" }));
    const link = h("a", { href: url, download: `sip-tackning-${params.county || "org"}-${params.from}-${params.to}.csv` });
    document.body.append(link);
    link.click();
    link.remove();
    window.setTimeout(() => URL.revokeObjectURL(url), 10000);
    slot.replaceChildren(h("p", { class: "notice", role: "status" }, "CSV-filen är nedladdad."));
  } catch (error) {
    slot.replaceChildren(errorBox(error));
  } finally {
    button.disabled = false;
  }
}

export async function renderRss(main) {
  const me = session.me;
  const county = hasRole("rss") ? me.county : null;
  main.append(
    h("h1", { tabindex: "-1" }, county ? `Uppföljning av SIP – län ${county}` : "Uppföljning av SIP"),
    h(
      "p",
      { class: "lead" },
      "Täckningsindikatorer för länet. Bara sammanräknade uppgifter visas. Celler med 1–4 personer undertrycks så att ingen kan kännas igen.",
    ),
  );
  const results = h("div", { class: "report", "aria-live": "polite" });
  const form = asyncForm(
    { class: "inline-form report-form", "aria-label": "Välj period och indelning" },
    [
      field("Från och med", h("input", { name: "from", type: "date", value: firstOfMonth(11) }), { required: true }),
      field("Till och med", h("input", { name: "to", type: "date", value: today() }), { required: true }),
      field("Indelning", select("group_by", Object.entries(GROUP_BY), "kommun")),
      h("button", { type: "submit", class: "primary" }, "Visa"),
    ],
    async (f) => {
      await show(formValues(f));
    },
  );
  main.append(section("Period", form), results);

  async function show(values) {
    results.replaceChildren(loading("Hämtar rapporten …"));
    const base = { county, from: values.from, to: values.to };
    let data;
    try {
      data = (await api("GET", `/api/v1/reports/coverage?${query({ ...base, group_by: values.group_by, interval: "month" })}`)).data;
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) {
        results.replaceChildren(
          h(
            "div",
            { class: "notice", role: "status", "data-unavailable": "coverage" },
            h("p", {}, "Täckningsrapporten finns inte i den här versionen av tjänsten ännu."),
          ),
        );
        return;
      }
      results.replaceChildren(errorBox(error));
      return;
    }
    const report = readReport(data, values.group_by);
    const trend = report.trend;
    const groupName = (GROUP_BY[values.group_by] || values.group_by).toLowerCase();
    const csvSlot = h("div");
    const csvButton = h("button", { type: "button", class: "primary" }, "Ladda ned CSV");
    csvButton.addEventListener("click", () => downloadCsv({ ...base, group_by: values.group_by }, csvButton, csvSlot));

    const parts = [
      section("Nyckeltal för hela länet", keyFigures(report.overall)),
    ];
    const charts = [];
    if (report.groups.length) {
      charts.push(
        horizontalBars({
          title: `Täckning per ${groupName}`,
          description: `Andel klienter i vård som har en SIP, ${values.from} till ${values.to}.`,
          rows: report.groups.map((g) => {
            const c = g.cells.coverage || { suppressed: true };
            return { label: g.label, value: c.value, suppressed: c.suppressed, detail: c.denominator !== null && c.denominator !== undefined ? `${c.numerator} av ${c.denominator}` : "" };
          }),
        }),
      );
    }
    if (trend.length) {
      charts.push(
        lineChart({
          title: "Täckning månad för månad",
          description: "Andel klienter i vård som har en SIP, per månad.",
          points: trend.map((t) => {
            const c = t.cells.coverage || { suppressed: true };
            return { label: t.label, value: c.value, suppressed: c.suppressed };
          }),
        }),
      );
    }
    const dischargeRows = report.groups.length ? report.groups : trend;
    if (dischargeRows.length) {
      charts.push(
        stackedBars({
          title: `Utskrivningar från LVM-vård med och utan eftervårdsplan per ${report.groups.length ? groupName : "månad"}`,
          description: "Antal avslutade LVM-vårdepisoder där klienten hade respektive saknade en aktiv SIP med eftervårdsinsats.",
          withLabel: "Med plan",
          withoutLabel: "Utan plan",
          rows: dischargeRows.map((g) => {
            const c = g.cells.discharge_with_plan || { suppressed: true };
            const suppressed = c.suppressed || c.numerator === null || c.denominator === null;
            return {
              label: g.label,
              with: suppressed ? null : c.numerator,
              without: suppressed ? null : c.denominator - c.numerator,
              suppressed,
            };
          }),
        }),
      );
    }
    parts.push(section("Diagram", charts.length ? charts : h("p", { class: "empty" }, "Inga uppgifter för perioden.")));
    if (report.groups.length) parts.push(section(`Alla indikatorer per ${groupName}`, fullTable(report.groups, values.group_by)));
    parts.push(
      section(
        "Ladda ned",
        h("p", {}, "Samma siffror som en CSV-fil, med undertryckta celler markerade."),
        csvButton,
        csvSlot,
      ),
    );
    results.replaceChildren(...parts);
  }

  await show(formValues(form));
  return "Uppföljning";
}
