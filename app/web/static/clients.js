// Clients: search by personal number (POST, never in the address bar), register, and one
// client's page with plans, samordnare, timeline and care episodes.

import { api, ApiError, hasRole, listAll, mayAuthor, orgName, session } from "./api.js";
import { go } from "./app.js";
import {
  checkbox,
  field,
  formatDate,
  formatPersonalNumber,
  formValues,
  h,
  section,
  select,
  today,
} from "./dom.js";
import { GENDER, PHASE, PLAN_STATUS, TIMELINE_KIND } from "./texts.js";
import { announce, asyncForm, badge, showFormError } from "./ui.js";

// A personal number typed in the search form, carried to the register form in memory only.
let pendingPersonalNumber = "";

function personalNumberInput(value = "") {
  return h("input", {
    name: "personal_number",
    type: "text",
    inputmode: "numeric",
    autocomplete: "off",
    spellcheck: "false",
    maxlength: "13",
    value,
  });
}

export async function renderClients(main) {
  main.append(h("h1", { tabindex: "-1" }, "Klienter"));
  const searchInput = personalNumberInput();
  const resultSlot = h("div", { class: "search-result" });
  const registerPnr = personalNumberInput(pendingPersonalNumber);

  const searchForm = asyncForm(
    { class: "inline-form", role: "search", "aria-label": "Sök klient" },
    [
      field("Personnummer eller samordningsnummer", searchInput, {
        required: true,
        hint: "12 siffror, ÅÅÅÅMMDD-NNNN. Sökningen skickas aldrig i adressfältet.",
      }),
      h("button", { type: "submit", class: "primary" }, "Sök"),
    ],
    async (form) => {
      resultSlot.replaceChildren();
      try {
        const { data } = await api("POST", "/api/v1/clients/search", {
          body: { personal_number: searchInput.value.trim() },
        });
        searchInput.value = "";
        go(`/clients/${data.id}`);
      } catch (error) {
        if (error instanceof ApiError && error.status === 404) {
          registerPnr.value = searchInput.value.trim();
          resultSlot.append(
            h(
              "p",
              { class: "notice", role: "status" },
              "Ingen klient med det numret är känd för din organisation. Du kan registrera klienten nedan.",
            ),
          );
          if (mayAuthor()) registerPnr.closest("form").querySelector("[name=given_name]").focus();
        } else {
          showFormError(form, error);
        }
      }
    },
  );
  main.append(section("Sök klient", searchForm, resultSlot));

  if (mayAuthor()) {
    const registerForm = asyncForm(
      { class: "stack", "aria-label": "Registrera klient" },
      [
        field("Personnummer eller samordningsnummer", registerPnr, { required: true }),
        field("Förnamn", h("input", { name: "given_name", type: "text", autocomplete: "off" }), { required: true }),
        field("Efternamn", h("input", { name: "family_name", type: "text", autocomplete: "off" }), { required: true }),
        field("Kön", select("gender", Object.entries(GENDER), "okant")),
        checkbox("Skyddade personuppgifter", { name: "protected_identity" }),
        h("button", { type: "submit", class: "primary" }, "Registrera klient"),
      ],
      async (form) => {
        const values = formValues(form);
        try {
          const { data } = await api("POST", "/api/v1/clients", { body: values });
          pendingPersonalNumber = "";
          announce(data.created ? "Klienten är registrerad." : "Klienten fanns redan och är nu kopplad till din organisation.");
          go(`/clients/${data.id}`);
        } catch (error) {
          showFormError(form, error);
        }
      },
    );
    main.append(
      section(
        "Registrera ny klient",
        h("p", {}, "Finns personen redan i Samplan kopplas hen till din organisation i stället för att dubbleras."),
        registerForm,
      ),
    );
  }
  pendingPersonalNumber = "";
  return "Klienter";
}

function orgOptions(filter = () => true) {
  return [...session.orgs.values()]
    .filter(filter)
    .sort((a, b) => a.name.localeCompare(b.name, "sv"))
    .map((o) => [o.id, o.name]);
}

async function safe(promise, fallback) {
  try {
    return await promise;
  } catch {
    return fallback;
  }
}

function timelineList(items) {
  if (!items.length) return h("p", { class: "empty" }, "Inget att visa ännu.");
  return h(
    "ol",
    { class: "timeline" },
    items.map((item) => {
      const title =
        item.kind === "episode" ? PHASE[item.phase] || item.title : item.title;
      const period = item.end_date ? ` – ${formatDate(item.end_date)}` : "";
      const link = item.plan_id
        ? h("a", { href: item.kind === "meeting" ? `#/plans/${item.plan_id}/meetings` : `#/plans/${item.plan_id}` }, title)
        : title;
      return h(
        "li",
        { class: `timeline-item timeline-${item.kind}` },
        h("span", { class: "timeline-date" }, h("time", { datetime: formatDate(item.date) }, formatDate(item.date)), period),
        h("span", { class: "timeline-kind" }, TIMELINE_KIND[item.kind] || item.kind),
        h("span", { class: "timeline-title" }, link, item.organisation_id ? ` · ${orgName(item.organisation_id)}` : ""),
      );
    }),
  );
}

// Meetings called but not yet held are not on the service's timeline (held ones are): they are
// added here from each plan's meetings, so the timeline shows what is coming too.
async function meetingItems(plans, known) {
  const out = [];
  for (const plan of plans) {
    const page = await safe(api("GET", `/api/v1/plans/${plan.id}/meetings?limit=200`), null);
    const meetings = page && page.data ? (Array.isArray(page.data) ? page.data : page.data.items || []) : [];
    for (const m of meetings) {
      if (known.has(m.id)) continue;
      out.push({
        kind: "meeting",
        date: (m.held_at || m.starts_at).slice(0, 10),
        at: m.held_at || m.starts_at,
        title: `${m.held_at ? "SIP-möte hållet" : "SIP-möte kallat"}: ${m.purpose}`,
        plan_id: plan.id,
        organisation_id: m.organiser_organisation_id,
      });
    }
  }
  return out;
}

function sortTimeline(items) {
  return items.sort((a, b) => String(a.date).localeCompare(String(b.date)) || String(a.at || "").localeCompare(String(b.at || "")));
}

export async function renderClient(main, clientId) {
  const { data: client } = await api("GET", `/api/v1/clients/${clientId}`);
  const [plans, coordinators, timeline] = await Promise.all([
    safe(listAll(`/api/v1/plans?client_id=${clientId}`), []),
    safe(api("GET", `/api/v1/clients/${clientId}/coordinators`).then((r) => r.data), []),
    safe(api("GET", `/api/v1/clients/${clientId}/timeline`).then((r) => r.data), []),
  ]);
  const name = `${client.given_name} ${client.family_name}`;
  main.append(h("h1", { tabindex: "-1" }, `Klient: ${name}`));

  main.append(
    section(
      "Uppgifter",
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Personnummer"),
        h("dd", {}, client.personal_number ? formatPersonalNumber(client.personal_number) : "Visas bara för organisationer som känner klienten"),
        h("dt", {}, "Kön"),
        h("dd", {}, GENDER[client.gender] || client.gender),
        h("dt", {}, "Födelseår"),
        h("dd", {}, String(client.birth_year)),
        h("dt", {}, "Skyddade personuppgifter"),
        h("dd", {}, client.protected_identity ? "Ja" : "Nej"),
      ),
    ),
  );

  // ---- plans
  const planList = plans.length
    ? h(
        "ul",
        { class: "cards" },
        plans.map((p) =>
          h(
            "li",
            { class: "card" },
            h("a", { href: `#/plans/${p.id}`, class: "card-title" }, p.title),
            " ",
            badge(PLAN_STATUS[p.status] || p.status, p.status),
            h("p", { class: "meta" }, `Uppföljning: ${formatDate(p.follow_up_date) || "ej satt"} · Startad av ${orgName(p.initiating_organisation_id)}`),
          ),
        ),
      )
    : h("p", { class: "empty" }, "Inga planer som du har åtkomst till.");
  const planSection = section("Planer (SIP)", planList);
  if (mayAuthor()) planSection.append(newPlanForm(client, name));
  main.append(planSection);

  // ---- samordnare
  main.append(coordinatorSection(client, coordinators));

  // ---- timeline
  const known = new Set(timeline.filter((i) => i.meeting_id).map((i) => i.meeting_id));
  const items = sortTimeline([...timeline, ...(await meetingItems(plans, known))]);
  main.append(
    section(
      "Tidslinje",
      h("p", { class: "hint" }, "Vårdepisoder, planer, möten och samordnarperioder i tidsordning."),
      timelineList(items),
    ),
  );

  if (mayAuthor()) main.append(episodeSection(client));
  return `Klient ${name}`;
}

function newPlanForm(client, name) {
  const me = session.me;
  const mine = session.orgs.get(me.organisation_id);
  const isHuvudman = mine && (mine.kind === "kommun" || mine.kind === "region");
  const form = asyncForm(
    { class: "stack", "aria-label": "Starta ny SIP" },
    [
      h("h3", {}, "Starta en ny SIP"),
      field("Rubrik", h("input", { name: "title", type: "text", value: `SIP för ${name}` }), { required: true }),
      field(
        "Lagrum",
        h("textarea", { name: "legal_basis", rows: "2", value: "Socialtjänstlagen (2025:400)\nHälso- och sjukvårdslagen 16 kap. 4 §" }),
        { hint: "Ett lagrum per rad." },
      ),
      field("Uppföljningsdatum", h("input", { name: "follow_up_date", type: "date", value: today(30) }), { required: true }),
      checkbox("Klienten deltar i planeringen", { name: "client_participated", checked: true }),
      isHuvudman ? checkbox(`${mine.name} har det övergripande ansvaret`, { name: "overall", checked: true }) : null,
      h("button", { type: "submit", class: "primary" }, "Starta planen"),
    ],
    async (f) => {
      const v = formValues(f);
      const body = {
        client_id: client.id,
        title: v.title,
        legal_basis: v.legal_basis.split("\n").map((s) => s.trim()).filter(Boolean),
        follow_up_date: v.follow_up_date || null,
        client_participated: v.client_participated,
        overall_responsible_organisation_id: v.overall ? me.organisation_id : null,
      };
      try {
        const { data } = await api("POST", "/api/v1/plans", { body });
        announce("Planen är startad.");
        go(`/plans/${data.id}`);
      } catch (error) {
        showFormError(f, error);
      }
    },
  );
  return form;
}

function coordinatorSection(client, coordinators) {
  const me = session.me;
  const current = coordinators.find((c) => !c.end_date);
  const list = coordinators.length
    ? h(
        "ul",
        { class: "plain" },
        [...coordinators].reverse().map((c) =>
          h(
            "li",
            {},
            h("strong", {}, c.user_name || "Okänd användare"),
            ` (${orgName(c.organisation_id)}) från ${formatDate(c.start_date)}`,
            c.end_date ? ` till ${formatDate(c.end_date)}` : " – nuvarande samordnare",
            c.handover_note ? h("p", { class: "meta" }, `Överlämning: ${c.handover_note}`) : null,
          ),
        ),
      )
    : h("p", { class: "empty" }, "Klienten har ingen samordnare.");
  const sec = section("Samordnare", list);
  if (!hasRole("handlaggare", "samordnare")) return sec;

  const reload = () => go(`/clients/${client.id}`);
  async function assign(form, body) {
    try {
      await api("POST", `/api/v1/clients/${client.id}/coordinators`, { body });
      announce("Samordnaren är tilldelad.");
      reload();
    } catch (error) {
      showFormError(form, error);
    }
  }
  const noteHint = current ? "Krävs vid överlämning från nuvarande samordnare." : "Behövs inte när klienten saknar samordnare.";

  if (hasRole("samordnare") && (!current || current.user_id !== me.user_id)) {
    const selfForm = asyncForm(
      { class: "stack", "aria-label": "Bli klientens samordnare" },
      [
        h("h3", {}, current ? "Ta över som samordnare" : "Bli klientens samordnare"),
        current
          ? field("Överlämningsanteckning", h("textarea", { name: "handover_note", rows: "3" }), { required: true, hint: noteHint })
          : null,
        h("button", { type: "submit", class: "primary" }, current ? "Ta över uppdraget" : "Ta uppdraget som samordnare"),
      ],
      async (f) => {
        const v = formValues(f);
        await assign(f, {
          user_id: me.user_id,
          organisation_id: me.organisation_id,
          start_date: current && current.start_date >= today() ? today(1) : today(),
          handover_note: v.handover_note || null,
        });
      },
    );
    sec.append(selfForm);
  }

  const otherForm = asyncForm(
    { class: "stack", "aria-label": "Tilldela eller överlämna samordnare" },
    [
      h("h3", {}, current ? "Överlämna till annan samordnare" : "Tilldela samordnare"),
      field("Samordnarens användar-id", h("input", { name: "user_id", type: "text", autocomplete: "off", spellcheck: "false" }), {
        required: true,
        hint: "Samordnaren ser sitt användar-id under Mitt konto.",
      }),
      field("Samordnarens organisation", select("organisation_id", orgOptions(), me.organisation_id)),
      field("Från och med", h("input", { name: "start_date", type: "date", value: current ? today(1) : today() }), { required: true }),
      field("Överlämningsanteckning", h("textarea", { name: "handover_note", rows: "3" }), { required: Boolean(current), hint: noteHint }),
      h("button", { type: "submit" }, current ? "Överlämna" : "Tilldela"),
    ],
    async (f) => {
      const v = formValues(f);
      await assign(f, {
        user_id: v.user_id,
        organisation_id: v.organisation_id,
        start_date: v.start_date,
        handover_note: v.handover_note || null,
      });
    },
  );
  sec.append(h("details", { class: "more-forms" }, h("summary", {}, current ? "Överlämna till någon annan" : "Tilldela någon annan"), otherForm));
  return sec;
}

function episodeSection(client) {
  const me = session.me;
  const kommuner = orgOptions((o) => o.kind === "kommun");
  const mine = session.orgs.get(me.organisation_id);
  const form = asyncForm(
    { class: "stack", "aria-label": "Registrera vårdepisod" },
    [
      field("Fas", select("phase", Object.entries(PHASE), "lvm_vard")),
      field("Startdatum", h("input", { name: "start_date", type: "date", value: today() }), { required: true }),
      field("Planerat slutdatum", h("input", { name: "planned_end_date", type: "date" }), {
        hint: "Till exempel planerad utskrivning.",
      }),
      field("Slutdatum", h("input", { name: "end_date", type: "date" })),
      field("Vårdgivande organisation", select("organisation_id", orgOptions(), me.organisation_id)),
      field(
        "Ansvarig kommun",
        select("responsible_kommun_id", kommuner, mine && mine.kind === "kommun" ? mine.id : kommuner.length ? kommuner[0][0] : ""),
      ),
      h("button", { type: "submit" }, "Registrera episod"),
    ],
    async (f) => {
      const v = formValues(f);
      const body = {
        phase: v.phase,
        start_date: v.start_date,
        planned_end_date: v.planned_end_date || null,
        end_date: v.end_date || null,
        organisation_id: v.organisation_id || null,
        responsible_kommun_id: v.responsible_kommun_id || null,
      };
      try {
        await api("POST", `/api/v1/clients/${client.id}/episodes`, { body });
        announce("Vårdepisoden är registrerad.");
        go(`/clients/${client.id}`);
      } catch (error) {
        showFormError(f, error);
      }
    },
  );
  return section(
    "Registrera vårdepisod",
    h("details", { class: "more-forms" }, h("summary", {}, "Ny episod i vårdkedjan"), form),
  );
}

