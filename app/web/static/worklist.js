// The start page for handläggare and samordnare: the signals for their clients, most urgent first.

import { api } from "./api.js";
import { formatDate, h } from "./dom.js";
import { SIGNAL, signalText } from "./texts.js";

function sortByUrgency(items) {
  return [...items].sort(
    (a, b) => a.urgency - b.urgency || String(a.since).localeCompare(String(b.since)),
  );
}

function row(item) {
  const target = item.meeting_id && item.plan_id
    ? `#/plans/${item.plan_id}/meetings`
    : item.plan_id
      ? `#/plans/${item.plan_id}`
      : `#/clients/${item.client_id}`;
  const targetText = item.meeting_id ? "Öppna mötet" : item.plan_id ? "Öppna planen" : "Öppna klienten";
  return h(
    "tr",
    { class: `signal signal-${item.signal}`, "data-signal": item.signal },
    h("th", { scope: "row" }, h("span", { class: `signal-label urgency-${Math.min(item.urgency, 4)}` }, SIGNAL[item.signal] || item.signal)),
    h("td", {}, h("a", { href: `#/clients/${item.client_id}` }, item.client_name)),
    h("td", {}, signalText(item)),
    h("td", {}, formatDate(item.due) || "–"),
    h("td", {}, h("a", { href: target, "aria-label": `${targetText}: ${item.client_name}, ${SIGNAL[item.signal] || item.signal}` }, targetText)),
  );
}

export async function renderWorklist(main) {
  main.append(
    h("h1", { tabindex: "-1" }, "Arbetslista"),
    h("p", { class: "lead" }, "Signaler för dina klienter, de mest brådskande först."),
  );
  const tbody = h("tbody");
  const table = h(
    "table",
    { class: "table worklist" },
    h("caption", { class: "visually-hidden" }, "Signaler, mest brådskande först"),
    h(
      "thead",
      {},
      h(
        "tr",
        {},
        h("th", { scope: "col" }, "Signal"),
        h("th", { scope: "col" }, "Klient"),
        h("th", { scope: "col" }, "Vad som behöver göras"),
        h("th", { scope: "col" }, "Senast"),
        h("th", { scope: "col" }, "Gå till"),
      ),
    ),
    tbody,
  );
  const more = h("div", { class: "more" });
  let items = [];

  async function load(cursor) {
    const url = cursor ? `/api/v1/worklist?limit=50&cursor=${encodeURIComponent(cursor)}` : "/api/v1/worklist?limit=50";
    const { data } = await api("GET", url);
    items = sortByUrgency([...items, ...data.items]);
    tbody.replaceChildren(...items.map(row));
    more.replaceChildren();
    if (data.next_cursor) {
      more.append(
        h(
          "button",
          {
            type: "button",
            onclick: async () => {
              await load(data.next_cursor);
            },
          },
          "Visa fler signaler",
        ),
      );
    }
  }

  await load(null);
  if (!items.length) {
    main.append(h("p", { class: "empty" }, "Inga signaler just nu."));
  } else {
    main.append(table, more);
  }
  main.append(
    h(
      "p",
      {},
      h("a", { href: "#/clients" }, "Sök eller registrera en klient"),
    ),
  );
  return "Arbetslista";
}
