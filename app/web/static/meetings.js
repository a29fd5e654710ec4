// A plan's meetings: kallelse (invitation), the invited organisations' answers, and the record
// of a held meeting.

import { api, ApiError, mayAuthor, orgName, session } from "./api.js";
import { checkbox, field, formatDateTime, formValues, h, localDateTime, toIsoWithOffset, uid } from "./dom.js";
import { MEETING_RESPONSE, MEETING_WARNING } from "./texts.js";
import { announce, asyncForm, showFormError } from "./ui.js";

const OPEN = new Set(["draft", "active", "paused"]);

function items(data) {
  if (!data) return [];
  return Array.isArray(data) ? data : data.items || [];
}

function nextWeekAt13() {
  const d = new Date();
  d.setDate(d.getDate() + 7);
  d.setHours(13, 0, 0, 0);
  const pad = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T13:00`;
}

export async function renderMeetings(main, planId) {
  const { data: plan } = await api("GET", `/api/v1/plans/${planId}`);
  main.append(
    h("h1", { tabindex: "-1" }, `Möten – ${plan.title}`),
    h("p", {}, h("a", { href: `#/plans/${planId}` }, "Tillbaka till planen")),
  );
  let meetings;
  try {
    meetings = items((await api("GET", `/api/v1/plans/${planId}/meetings?limit=200`)).data);
  } catch (error) {
    if (error instanceof ApiError && (error.status === 404 || error.status === 405)) {
      main.append(
        h(
          "div",
          { class: "notice", role: "status", "data-unavailable": "meetings" },
          h("p", {}, "Möten och kallelser finns inte i den här versionen av tjänsten ännu."),
          h("p", {}, "Planens övriga delar fungerar som vanligt."),
        ),
      );
      return `Möten – ${plan.title}`;
    }
    throw error;
  }
  const reload = async (message, focusId) => {
    const fresh = items((await api("GET", `/api/v1/plans/${planId}/meetings?limit=200`)).data);
    list.replaceChildren(...renderList(fresh));
    announce(message);
    const target = focusId && document.getElementById(focusId);
    if (target) target.focus();
  };
  const me = session.me;
  const editable = mayAuthor() && OPEN.has(plan.status);

  function renderList(all) {
    if (!all.length) return [h("p", { class: "empty" }, "Inga möten är kallade ännu.")];
    return [...all]
      .sort((a, b) => String(a.starts_at).localeCompare(String(b.starts_at)))
      .map((m) => meetingCard(m));
  }

  function meetingCard(m) {
    const headingId = `meeting-${m.id}`;
    const mine = m.invitees.find((i) => i.organisation_id === me.organisation_id);
    const card = h(
      "article",
      { class: "card meeting", "aria-labelledby": headingId, "data-meeting-id": m.id },
      h("h2", { id: headingId, tabindex: "-1" }, `SIP-möte ${formatDateTime(m.starts_at)}`, m.held_at ? " (hållet)" : ""),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Syfte"),
        h("dd", {}, m.purpose),
        h("dt", {}, "Plats"),
        h("dd", {}, m.location),
        h("dt", {}, "Kallat av"),
        h("dd", {}, orgName(m.organiser_organisation_id)),
      ),
      m.questions && m.questions.length
        ? [h("h3", {}, "Frågor att ta upp"), h("ul", {}, m.questions.map((q) => h("li", {}, q)))]
        : null,
      (m.warnings || []).map((w) => h("p", { class: "notice" }, MEETING_WARNING[w.code] || w.message)),
      h("h3", {}, "Svar från inbjudna"),
      m.invitees.length
        ? h(
            "table",
            { class: "table" },
            h("thead", {}, h("tr", {}, h("th", { scope: "col" }, "Organisation"), h("th", { scope: "col" }, "Svar"), h("th", { scope: "col" }, "Kommentar"))),
            h(
              "tbody",
              {},
              m.invitees.map((i) =>
                h(
                  "tr",
                  { "data-invitee": i.organisation_id },
                  h("th", { scope: "row" }, i.organisation_name || orgName(i.organisation_id)),
                  h("td", {}, MEETING_RESPONSE[i.response] || i.response, i.proposed_starts_at ? `: ${formatDateTime(i.proposed_starts_at)}` : ""),
                  h("td", {}, i.comment || ""),
                ),
              ),
            ),
          )
        : h("p", {}, "Ingen annan organisation är kallad."),
    );
    if (m.held_at) {
      card.append(
        h("h3", {}, `Mötet hölls ${formatDateTime(m.held_at)}`),
        m.attendees && m.attendees.length
          ? h("ul", {}, m.attendees.map((a) => h("li", {}, `${a.name}, ${a.role}${a.organisation_id ? ` (${orgName(a.organisation_id)})` : ""}`)))
          : null,
        h("p", { class: "record" }, m.record || "Inga anteckningar."),
      );
      return card;
    }
    if (mine && mayAuthor()) card.append(answerForm(m, mine, headingId));
    if (editable && m.organiser_organisation_id === me.organisation_id) card.append(recordForm(m, headingId));
    return card;
  }

  function answerForm(m, mine, headingId) {
    const groupId = uid("answer");
    const proposed = field("Föreslagen tid", h("input", { name: "proposed_starts_at", type: "datetime-local" }));
    proposed.hidden = true;
    const radios = Object.entries(MEETING_RESPONSE)
      .filter(([value]) => value !== "pending")
      .map(([value, text], index) => {
        const id = `${groupId}-${value}`;
        const input = h("input", { type: "radio", name: "response", value, id, checked: mine.response === value || (mine.response === "pending" && index === 0) });
        input.addEventListener("change", () => {
          proposed.hidden = input.value !== "proposed_time" || !input.checked;
        });
        return h("div", { class: "field-check" }, input, h("label", { for: id }, text));
      });
    return h(
      "details",
      { class: "more-forms", open: mine.response === "pending" },
      h("summary", {}, mine.response === "pending" ? "Svara på kallelsen" : "Ändra ert svar"),
      asyncForm(
        { class: "stack", "aria-label": "Svara på kallelsen" },
        [
          h("fieldset", { class: "checks" }, h("legend", {}, `Svar från ${orgName(me.organisation_id)}`), radios),
          proposed,
          field("Kommentar", h("textarea", { name: "comment", rows: "2" })),
          h("button", { type: "submit", class: "primary" }, "Skicka svar"),
        ],
        async (f) => {
          const v = formValues(f);
          const body = { response: v.response };
          if (v.response === "proposed_time") body.proposed_starts_at = toIsoWithOffset(v.proposed_starts_at);
          if (v.comment) body.comment = v.comment;
          try {
            await api("POST", `/api/v1/plans/${planId}/meetings/${m.id}/responses`, { body });
            await reload("Ert svar är skickat.", headingId);
          } catch (error) {
            showFormError(f, error);
          }
        },
      ),
    );
  }

  function recordForm(m, headingId) {
    return h(
      "details",
      { class: "more-forms" },
      h("summary", {}, "Dokumentera mötet"),
      asyncForm(
        { class: "stack", "aria-label": "Dokumentera mötet" },
        [
          field("Mötet hölls", h("input", { name: "held_at", type: "datetime-local", value: localDateTime(-1) }), { required: true }),
          field("Deltagare", h("textarea", { name: "attendees", rows: "3" }), {
            hint: "En deltagare per rad: namn, roll. Till exempel: Kim Andersson, klient",
          }),
          field("Anteckningar från mötet", h("textarea", { name: "record", rows: "4" })),
          h("button", { type: "submit", class: "primary" }, "Spara dokumentationen"),
        ],
        async (f) => {
          const v = formValues(f);
          const attendees = v.attendees
            .split("\n")
            .map((line) => line.trim())
            .filter(Boolean)
            .map((line) => {
              const [name, ...role] = line.split(",");
              return { name: name.trim(), role: role.join(",").trim() || "deltagare" };
            });
          try {
            await api("PATCH", `/api/v1/plans/${planId}/meetings/${m.id}`, {
              body: { held_at: toIsoWithOffset(v.held_at), attendees, record: v.record || null },
            });
            await reload("Mötet är dokumenterat.", headingId);
          } catch (error) {
            showFormError(f, error);
          }
        },
      ),
    );
  }

  const list = h("div", { class: "meeting-list" }, renderList(meetings));
  main.append(list);

  if (editable) {
    const others = plan.participants.filter((x) => x.organisation_id && x.organisation_id !== me.organisation_id);
    const inviteId = uid("invite");
    const form = asyncForm(
      { class: "stack", "aria-labelledby": inviteId },
      [
        field("Mötestid", h("input", { name: "starts_at", type: "datetime-local", value: nextWeekAt13() }), { required: true }),
        field("Syfte", h("textarea", { name: "purpose", rows: "2", value: "SIP-möte" }), { required: true }),
        field("Frågor att ta upp", h("textarea", { name: "questions", rows: "3" }), { hint: "En fråga per rad." }),
        field("Plats eller länk", h("input", { name: "location", type: "text" }), { required: true }),
        h(
          "fieldset",
          { class: "checks" },
          h("legend", {}, "Kalla organisationer"),
          others.length
            ? others.map((x) =>
                checkbox(x.organisation_name || orgName(x.organisation_id), {
                  name: "invitee_organisation_ids",
                  value: x.organisation_id,
                  checked: true,
                  "data-multi": "1",
                }),
              )
            : h("p", {}, "Inga andra organisationer deltar i planen ännu."),
        ),
        h("button", { type: "submit", class: "primary" }, "Skicka kallelse"),
      ],
      async (f) => {
        const v = formValues(f);
        const body = {
          starts_at: toIsoWithOffset(v.starts_at),
          purpose: v.purpose,
          questions: v.questions.split("\n").map((q) => q.trim()).filter(Boolean),
          location: v.location,
          invitee_organisation_ids: v.invitee_organisation_ids || [],
        };
        try {
          const { data } = await api("POST", `/api/v1/plans/${planId}/meetings`, { body });
          f.reset();
          await reload("Kallelsen är skickad.", `meeting-${data.id}`);
        } catch (error) {
          showFormError(f, error);
        }
      },
    );
    main.append(
      h(
        "section",
        { "aria-labelledby": inviteId },
        h("h2", { id: inviteId, tabindex: "-1" }, "Ny kallelse"),
        form,
      ),
    );
  }
  return `Möten – ${plan.title}`;
}

