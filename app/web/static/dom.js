// Small DOM helpers. Text always goes in as text nodes, never as HTML.

const SVG_NS = "http://www.w3.org/2000/svg";

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

function setAttrs(el, attrs) {
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" && "value" in el) {
      el.value = value;
    } else if (key === "checked" || key === "selected") {
      el[key] = Boolean(value);
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
}

export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  setAttrs(el, attrs);
  append(el, children);
  return el;
}

export function svg(tag, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

let counter = 0;
export function uid(prefix = "f") {
  counter += 1;
  return `${prefix}-${counter}`;
}

// A labelled form field. `control` is an input, select or textarea element; the label is tied
// to it with for/id, and an optional hint is tied with aria-describedby.
export function field(labelText, control, { hint, required } = {}) {
  const id = control.id || uid(control.name || "f");
  control.id = id;
  if (required) {
    control.required = true;
    control.setAttribute("aria-required", "true");
  }
  const parts = [h("label", { for: id }, labelText, required ? h("span", { class: "req" }, " (obligatoriskt)") : null)];
  if (hint) {
    const hintId = `${id}-hint`;
    parts.push(h("p", { class: "hint", id: hintId }, hint));
    control.setAttribute("aria-describedby", hintId);
  }
  parts.push(control);
  return h("div", { class: control.type === "checkbox" ? "field field-check" : "field" }, parts);
}

export function checkbox(labelText, attrs = {}) {
  const input = h("input", { type: "checkbox", ...attrs });
  input.id = input.id || uid(attrs.name || "c");
  return h("div", { class: "field-check" }, input, h("label", { for: input.id }, labelText));
}

export function select(name, options, selected, attrs = {}) {
  return h(
    "select",
    { name, ...attrs },
    options.map(([value, text]) => h("option", { value, selected: value === selected }, text)),
  );
}

export function button(text, onClick, attrs = {}) {
  return h("button", { type: "button", onclick: onClick, ...attrs }, text);
}

// A section with a focusable h2, so that focus can move to it after a change.
export function section(title, ...children) {
  const id = uid("s");
  return h(
    "section",
    { "aria-labelledby": id },
    h("h2", { id, tabindex: "-1" }, title),
    ...children,
  );
}

export function clear(el) {
  while (el.firstChild) el.removeChild(el.firstChild);
}

export function formValues(form) {
  const out = {};
  for (const el of form.elements) {
    if (!el.name || el.disabled) continue;
    if (el.type === "checkbox") {
      if (el.dataset.multi) {
        out[el.name] = out[el.name] || [];
        if (el.checked) out[el.name].push(el.value);
      } else {
        out[el.name] = el.checked;
      }
    } else if (el.type === "radio") {
      if (el.checked) out[el.name] = el.value;
    } else if (el.tagName !== "BUTTON" && el.tagName !== "FIELDSET") {
      out[el.name] = el.value.trim();
    }
  }
  return out;
}

export function formatDate(value) {
  if (!value) return "";
  return String(value).slice(0, 10);
}

export function formatDateTime(value) {
  if (!value) return "";
  const d = new Date(value);
  if (Number.isNaN(d.getTime())) return String(value);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

export function today(offsetDays = 0) {
  const d = new Date();
  d.setDate(d.getDate() + offsetDays);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`;
}

export function localDateTime(offsetMinutes = 0) {
  const d = new Date(Date.now() + offsetMinutes * 60000);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

// A datetime-local value (the user's local time) as ISO 8601 with an offset, as the API wants.
export function toIsoWithOffset(localValue) {
  const d = new Date(localValue);
  if (Number.isNaN(d.getTime())) return null;
  return d.toISOString();
}

export function formatPersonalNumber(pnr) {
  if (!pnr) return "";
  return pnr.length === 12 ? `${pnr.slice(0, 8)}-${pnr.slice(8)}` : pnr;
}

export function percent(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return `${Math.round(value * 100)} %`;
}
