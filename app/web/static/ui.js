// Shared view pieces: announcements, error boxes, form error marking.

import { ApiError } from "./api.js";
import { clear, h } from "./dom.js";
import { ruleText, statusMessage } from "./texts.js";

// Polite announcements for screen readers and a visible confirmation line.
export function announce(text) {
  const region = document.getElementById("status");
  if (!region) return;
  clear(region);
  // A fresh text node after clearing makes screen readers read it even when it repeats.
  window.setTimeout(() => {
    region.textContent = text;
  }, 50);
}

const FIELD_LABELS = {
  personal_number: "Personnummer",
  given_name: "Förnamn",
  family_name: "Efternamn",
  title: "Rubrik",
  follow_up_date: "Uppföljningsdatum",
  description: "Beskrivning",
  responsible_organisation_id: "Ansvarig organisation",
  organisation_id: "Organisation",
  user_id: "Samordnarens användar-id",
  start_date: "Startdatum",
  end_date: "Slutdatum",
  handover_note: "Överlämningsanteckning",
  given_at: "Samtycke lämnat",
  obtained_by: "Inhämtat av",
  scope_organisation_ids: "Organisationer som omfattas",
  valid_until: "Giltigt till",
  reason: "Motivering",
  starts_at: "Mötestid",
  purpose: "Syfte",
  location: "Plats",
  held_at: "Mötet hölls",
  record: "Anteckningar",
  proposed_starts_at: "Föreslagen tid",
  planned_end_date: "Planerat slutdatum",
  phase: "Fas",
  name: "Namn",
};

function fieldName(path) {
  const parts = String(path || "").split(".");
  return parts.filter((p) => p !== "body" && !/^\d+$/.test(p)).pop() || "";
}

function errorSentence(err, actionsById) {
  if (err.rule) return ruleText(err, actionsById);
  const name = fieldName(err.field);
  const label = FIELD_LABELS[name] || name;
  if (err.code === "missing") return `${label}: fältet måste fyllas i.`;
  if (name === "personal_number") return "Personnumret är inte giltigt (kontrollera siffrorna och kontrollsiffran).";
  return label ? `${label}: värdet är inte giltigt.` : "Ett värde är inte giltigt.";
}

// An alert box for a failed call. `options.onReload` adds a reload button (used for 412).
// `leads` overrides the lead sentence per status, e.g. {422: "Planen kan inte aktiveras ännu."}.
export function errorBox(error, { actionsById = {}, onReload, leads = {} } = {}) {
  const status = error instanceof ApiError ? error.status : 0;
  const items = error instanceof ApiError ? error.errors : [];
  const lead = leads[status] || statusMessage(status);
  const box = h(
    "div",
    { class: status === 412 ? "alert alert-conflict" : "alert", role: "alert", tabindex: "-1" },
    h("p", { class: "alert-lead" }, lead),
  );
  if (items.length) {
    box.append(h("ul", { class: "rule-list" }, items.map((e) => h("li", {}, errorSentence(e, actionsById)))));
  }
  if (status === 412 && onReload) {
    box.append(h("button", { type: "button", class: "primary", onclick: onReload }, "Ladda om planen"));
  }
  return box;
}

// Put an error box in a form's message slot and mark the named fields invalid.
export function showFormError(form, error, options = {}) {
  const slot = form.querySelector(".form-message") || form;
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
  clear(slot);
  const box = errorBox(error, options);
  slot.append(box);
  if (error instanceof ApiError) {
    for (const err of error.errors) {
      const name = fieldName(err.field);
      if (!name) continue;
      const input = form.querySelector(`[name="${CSS.escape(name)}"]`);
      if (input) input.setAttribute("aria-invalid", "true");
    }
  }
  box.focus();
  return box;
}

export function clearFormMessage(form) {
  const slot = form.querySelector(".form-message");
  if (slot) clear(slot);
  for (const el of form.querySelectorAll("[aria-invalid]")) el.removeAttribute("aria-invalid");
}

export function formMessageSlot() {
  return h("div", { class: "form-message" });
}

// Required fields left empty: a Swedish message naming each, before anything is sent.
function checkRequired(form) {
  const missing = [];
  for (const el of form.querySelectorAll("[required]")) {
    const empty = el.type === "checkbox" ? !el.checked : !String(el.value || "").trim();
    if (empty) {
      el.setAttribute("aria-invalid", "true");
      const label = form.querySelector(`label[for="${CSS.escape(el.id)}"]`);
      const text = label ? label.firstChild.textContent.trim() : el.name;
      missing.push(`${text}: fältet måste fyllas i.`);
    }
  }
  if (!missing.length) return true;
  const slot = form.querySelector(".form-message") || form;
  const box = h(
    "div",
    { class: "alert", role: "alert", tabindex: "-1" },
    h("p", { class: "alert-lead" }, "Fyll i de obligatoriska fälten."),
    h("ul", { class: "rule-list" }, missing.map((m) => h("li", {}, m))),
  );
  slot.append(box);
  box.focus();
  return false;
}

// A form whose submit runs `handler(form)`, disabling its buttons meanwhile.
export function asyncForm(attrs, children, handler) {
  const form = h("form", { novalidate: true, ...attrs }, children, formMessageSlot());
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const buttons = form.querySelectorAll("button");
    buttons.forEach((b) => {
      b.disabled = true;
    });
    clearFormMessage(form);
    try {
      if (!checkRequired(form)) return;
      await handler(form);
    } finally {
      buttons.forEach((b) => {
        b.disabled = false;
      });
    }
  });
  return form;
}

export function loading(text = "Hämtar …") {
  return h("p", { class: "loading", role: "status" }, text);
}

export function badge(text, kind) {
  return h("span", { class: `badge badge-${kind}` }, text);
}
