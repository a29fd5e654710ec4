// One plan: status and activation, details, participants, consent, needs, goals, actions by
// responsible organisation (accept or dispute your own), and the version history. Every change
// sends the plan's ETag in If-Match; when someone else changed the plan first (412) the page says
// so and offers a reload.

import { api, ApiError, mayAuthor, orgName, session } from "./api.js";
import {
  button,
  checkbox,
  clear,
  field,
  formatDate,
  formatDateTime,
  formValues,
  h,
  localDateTime,
  section,
  select,
  toIsoWithOffset,
  today,
  uid,
} from "./dom.js";
import {
  ACTION_STATUS,
  CHANGE,
  CONSENT_METHOD,
  ORG_KIND,
  PARTICIPANT_KIND,
  PHASE,
  PLAN_STATUS,
  TRANSITION,
  TRANSITION_DONE,
} from "./texts.js";
import { announce, asyncForm, badge, errorBox, loading, showFormError } from "./ui.js";

const TRANSITIONS = {
  draft: ["active", "cancelled"],
  active: ["paused", "closed"],
  paused: ["active", "closed"],
  closed: [],
  cancelled: [],
};
const OPEN = new Set(["draft", "active", "paused"]);

class PlanView {
  constructor(root, planId) {
    this.root = root;
    this.planId = planId;
    this.plan = null;
    this.etag = null;
    this.versions = [];
  }

  get path() {
    return `/api/v1/plans/${this.planId}`;
  }

  get editable() {
    return mayAuthor() && OPEN.has(this.plan.status);
  }

  get actionsById() {
    return Object.fromEntries(this.plan.actions.map((a) => [a.id, a]));
  }

  async load() {
    const { data, etag } = await api("GET", this.path);
    this.plan = data;
    this.etag = etag || `"${data.version}"`;
    try {
      this.versions = (await api("GET", `${this.path}/versions`)).data;
    } catch {
      this.versions = [];
    }
  }

  async reload() {
    clear(this.root);
    this.root.append(loading("Laddar om planen …"));
    await this.load();
    this.render();
    announce(`Planen är omladdad och visar version ${this.plan.version}. Gör din ändring igen om den behövs.`);
    this.root.querySelector("h1").focus();
  }

  // A change of the plan: If-Match with the version on screen; re-render on success.
  async change(form, method, path, body, done, focusSection) {
    try {
      const { data, etag } = await api(method, path, { body, ifMatch: this.etag });
      this.plan = data;
      this.etag = etag || `"${data.version}"`;
      try {
        this.versions = (await api("GET", `${this.path}/versions`)).data;
      } catch {
        /* the history is shown as it was */
      }
      this.render();
      announce(done);
      const target = focusSection && this.root.querySelector(`[data-section="${focusSection}"] h2`);
      (target || this.root.querySelector("h1")).focus();
      return true;
    } catch (error) {
      this.fail(form, error);
      return false;
    }
  }

  fail(form, error) {
    const options = { actionsById: this.actionsById, onReload: () => this.reload() };
    if (error instanceof ApiError && error.status === 412) {
      const slot = this.root.querySelector("#plan-alert");
      slot.replaceChildren(errorBox(error, options));
      if (form) {
        const formSlot = form.querySelector(".form-message");
        if (formSlot) formSlot.replaceChildren(h("p", { class: "alert-inline" }, "Ändringen sparades inte: planen har ändrats av någon annan."));
      }
      slot.firstChild.focus();
      return;
    }
    if (form) {
      showFormError(form, error, options);
    } else {
      const slot = this.root.querySelector("#plan-alert");
      slot.replaceChildren(errorBox(error, options));
      slot.firstChild.focus();
    }
  }

  render() {
    const p = this.plan;
    clear(this.root);
    this.root.append(
      h("h1", { tabindex: "-1" }, p.title),
      h(
        "p",
        { class: "plan-meta" },
        badge(PLAN_STATUS[p.status] || p.status, p.status),
        ` Version ${p.version} · Startad av ${orgName(p.initiating_organisation_id)} ${formatDate(p.created_at)} · `,
        h("a", { href: `#/clients/${p.client_id}` }, "Till klienten"),
        " · ",
        h("a", { href: `#/plans/${p.id}/meetings` }, "Möten och kallelser"),
      ),
      h("div", { id: "plan-alert" }),
      this.statusSection(),
      this.detailsSection(),
      this.participantsSection(),
      this.consentSection(),
      this.needsGoalsSection(),
      this.actionsSection(),
      this.versionsSection(),
    );
  }

  // ---- status and activation

  statusSection() {
    const p = this.plan;
    const slot = h("div", { class: "form-message" });
    const sec = section("Status", h("p", {}, "Planen är ", h("strong", {}, (PLAN_STATUS[p.status] || p.status).toLowerCase()), "."));
    sec.dataset.section = "status";
    if (p.disputed_action_count) {
      sec.append(
        h("p", { class: "notice" }, `${p.disputed_action_count} insats${p.disputed_action_count === 1 ? "" : "er"} är bestridd${p.disputed_action_count === 1 ? "" : "a"} och behöver lösas.`),
      );
    }
    if (!mayAuthor()) return sec;
    const targets = TRANSITIONS[p.status] || [];
    if (!targets.length) {
      sec.append(h("p", {}, "Planen kan inte längre ändra status."));
      return sec;
    }
    const buttons = h("div", { class: "button-row" });
    for (const to of targets) {
      buttons.append(
        button(
          TRANSITION[to],
          async (event) => {
            const clicked = event.currentTarget;
            clicked.disabled = true;
            slot.replaceChildren();
            try {
              const { data, etag } = await api("POST", `${this.path}/transitions`, { body: { to }, ifMatch: this.etag });
              this.plan = data;
              this.etag = etag || `"${data.version}"`;
              try {
                this.versions = (await api("GET", `${this.path}/versions`)).data;
              } catch {
                /* keep */
              }
              this.render();
              announce(TRANSITION_DONE[to]);
              this.root.querySelector('[data-section="status"] h2').focus();
            } catch (error) {
              if (error instanceof ApiError && error.status === 412) {
                this.fail(null, error);
              } else {
                const box = errorBox(error, {
                  actionsById: this.actionsById,
                  leads: { 422: to === "active" ? "Planen kan inte aktiveras ännu. Det här saknas:" : "Statusen kunde inte ändras:" },
                });
                box.classList.add("activation-refusal");
                slot.replaceChildren(box);
                box.focus();
              }
              clicked.disabled = false;
            }
          },
          { class: to === "active" ? "primary" : to === "cancelled" ? "danger" : "", "data-transition": to },
        ),
      );
    }
    sec.append(buttons, slot);
    return sec;
  }

  // ---- plan details

  huvudmanParticipants() {
    return this.plan.participants.filter(
      (x) => x.kind === "huvudman" && (x.organisation_kind === "kommun" || x.organisation_kind === "region"),
    );
  }

  orgParticipants() {
    return this.plan.participants.filter((x) => x.organisation_id);
  }

  detailsSection() {
    const p = this.plan;
    const facts = h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Övergripande ansvar"),
      h("dd", {}, p.overall_responsible_organisation_id ? orgName(p.overall_responsible_organisation_id) : "Ej bestämt"),
      h("dt", {}, "Uppföljningsdatum"),
      h("dd", {}, formatDate(p.follow_up_date) || "Ej satt"),
      h("dt", {}, "Klienten deltar"),
      h("dd", {}, p.client_participated ? "Ja" : "Nej"),
      h("dt", {}, "Lagrum"),
      h("dd", {}, p.legal_basis.length ? p.legal_basis.join("; ") : "Ej angivet"),
    );
    const sec = section("Planens uppgifter", facts);
    sec.dataset.section = "details";
    if (!this.editable) return sec;
    const options = [["", "Ej bestämt"], ...this.huvudmanParticipants().map((x) => [x.organisation_id, x.organisation_name || orgName(x.organisation_id)])];
    const form = asyncForm(
      { class: "stack", "aria-label": "Ändra planens uppgifter" },
      [
        field("Rubrik", h("input", { name: "title", type: "text", value: p.title }), { required: true }),
        field("Övergripande ansvar", select("overall_responsible_organisation_id", options, p.overall_responsible_organisation_id || ""), {
          hint: "Bara en deltagande kommun eller region kan ha det övergripande ansvaret.",
        }),
        field("Uppföljningsdatum", h("input", { name: "follow_up_date", type: "date", value: p.follow_up_date || "" })),
        checkbox("Klienten deltar i planeringen", { name: "client_participated", checked: p.client_participated }),
        checkbox("Klienten motsätter sig att närstående deltar", { name: "relatives_objection", checked: p.relatives_objection }),
        h("button", { type: "submit" }, "Spara uppgifterna"),
      ],
      async (f) => {
        const v = formValues(f);
        await this.change(
          f,
          "PATCH",
          this.path,
          {
            title: v.title,
            overall_responsible_organisation_id: v.overall_responsible_organisation_id || null,
            follow_up_date: v.follow_up_date || null,
            client_participated: v.client_participated,
            relatives_objection: v.relatives_objection,
          },
          "Planens uppgifter är sparade.",
          "details",
        );
      },
    );
    sec.append(h("details", { class: "more-forms" }, h("summary", {}, "Ändra uppgifterna"), form));
    return sec;
  }

  // ---- participants

  participantsSection() {
    const p = this.plan;
    const list = h(
      "ul",
      { class: "plain participants" },
      p.participants.map((x) =>
        h(
          "li",
          {},
          h("strong", {}, x.organisation_id ? x.organisation_name || orgName(x.organisation_id) : x.kind === "client" ? "Klienten" : x.name || ""),
          ` – ${PARTICIPANT_KIND[x.kind] || x.kind}`,
          x.organisation_kind ? ` (${ORG_KIND[x.organisation_kind] || x.organisation_kind})` : "",
          x.relation ? ` (${x.relation})` : "",
        ),
      ),
    );
    const sec = section("Deltagare", list);
    sec.dataset.section = "participants";
    if (!this.editable) return sec;
    const taking = new Set(p.participants.map((x) => x.organisation_id).filter(Boolean));
    const orgs = [...session.orgs.values()]
      .filter((o) => !taking.has(o.id))
      .sort((a, b) => a.name.localeCompare(b.name, "sv"))
      .map((o) => [o.id, `${o.name} (${ORG_KIND[o.kind] || o.kind})`]);
    const kindSelect = select("kind", Object.entries(PARTICIPANT_KIND), "huvudman");
    const orgField = field("Organisation", select("organisation_id", orgs, orgs.length ? orgs[0][0] : ""));
    const nameField = field("Namn", h("input", { name: "name", type: "text", autocomplete: "off" }));
    const relationField = field("Relation till klienten", h("input", { name: "relation", type: "text", autocomplete: "off" }));
    const sync = () => {
      const withOrg = kindSelect.value === "huvudman" || kindSelect.value === "other";
      orgField.hidden = !withOrg;
      nameField.hidden = kindSelect.value !== "narstaende";
      relationField.hidden = kindSelect.value !== "narstaende";
    };
    kindSelect.addEventListener("change", sync);
    const form = asyncForm(
      { class: "stack", "aria-label": "Lägg till deltagare" },
      [
        h("h3", {}, "Bjud in en deltagare"),
        field("Typ av deltagare", kindSelect),
        orgField,
        nameField,
        relationField,
        h("button", { type: "submit" }, "Lägg till deltagare"),
      ],
      async (f) => {
        const v = formValues(f);
        const body = { kind: v.kind };
        if (v.kind === "huvudman" || v.kind === "other") body.organisation_id = v.organisation_id;
        if (v.kind === "narstaende") {
          body.name = v.name;
          if (v.relation) body.relation = v.relation;
        }
        const name = body.organisation_id ? orgName(body.organisation_id) : PARTICIPANT_KIND[v.kind];
        await this.change(f, "POST", `${this.path}/participants`, body, `${name} är tillagd som deltagare.`, "participants");
      },
    );
    sync();
    sec.append(
      form,
      h(
        "p",
        { class: "hint" },
        "En inbjuden organisation ser planen först när klientens samtycke omfattar den. Registrera eller komplettera samtycket nedan.",
      ),
    );
    return sec;
  }

  // ---- consent

  consentSection() {
    const p = this.plan;
    const list = p.consents.length
      ? h(
          "ul",
          { class: "plain" },
          p.consents.map((c) =>
            h(
              "li",
              { class: c.active ? "consent-active" : "consent-inactive" },
              h("strong", {}, c.active ? "Gällande samtycke" : c.withdrawn_at ? "Återkallat samtycke" : "Utgånget samtycke"),
              ` – ${CONSENT_METHOD[c.method] || c.method}, lämnat ${formatDateTime(c.given_at)}, inhämtat av ${c.obtained_by}`,
              c.valid_until ? `, gäller till ${formatDate(c.valid_until)}` : "",
              h("br"),
              `Omfattar: ${c.scope_organisation_ids.map(orgName).join(", ")}`,
              c.withdrawn_at ? h("p", { class: "meta" }, `Återkallat ${formatDateTime(c.withdrawn_at)}: ${c.withdrawn_reason || ""}`) : null,
              c.active && this.editable ? this.withdrawForm(c) : null,
            ),
          ),
        )
      : h("p", { class: "empty" }, "Inget samtycke är registrerat.");
    const sec = section("Samtycke", list);
    sec.dataset.section = "consent";
    if (!this.editable) return sec;
    const scopeId = uid("scope");
    const scope = h(
      "fieldset",
      { class: "checks", "aria-describedby": `${scopeId}-hint` },
      h("legend", {}, "Organisationer som samtycket omfattar"),
      h("p", { class: "hint", id: `${scopeId}-hint` }, "Bara dessa organisationer får se planen."),
      this.orgParticipants().map((x) =>
        checkbox(x.organisation_name || orgName(x.organisation_id), {
          name: "scope_organisation_ids",
          value: x.organisation_id,
          checked: true,
          "data-multi": "1",
        }),
      ),
    );
    const form = asyncForm(
      { class: "stack", "aria-label": "Registrera samtycke" },
      [
        h("h3", {}, "Registrera samtycke"),
        field("Samtycket lämnades", h("input", { name: "given_at", type: "datetime-local", value: localDateTime(-1) }), { required: true }),
        field("Inhämtat av", h("input", { name: "obtained_by", type: "text", value: session.me.name || "" }), { required: true }),
        field("Hur samtycket lämnades", select("method", Object.entries(CONSENT_METHOD), "written")),
        scope,
        field("Gäller till och med", h("input", { name: "valid_until", type: "date", value: today(365) })),
        h("button", { type: "submit" }, "Registrera samtycke"),
      ],
      async (f) => {
        const v = formValues(f);
        await this.change(
          f,
          "POST",
          `${this.path}/consents`,
          {
            given_at: toIsoWithOffset(v.given_at),
            obtained_by: v.obtained_by,
            method: v.method,
            scope_organisation_ids: v.scope_organisation_ids || [],
            valid_until: v.valid_until || null,
          },
          "Samtycket är registrerat.",
          "consent",
        );
      },
    );
    sec.append(h("details", { class: "more-forms", open: !p.consents.some((c) => c.active) }, h("summary", {}, "Nytt samtycke"), form));
    return sec;
  }

  withdrawForm(consent) {
    const form = asyncForm(
      { class: "stack compact", "aria-label": "Återkalla samtycke" },
      [
        field("Skäl till återkallelsen", h("textarea", { name: "reason", rows: "2" }), { required: true }),
        h("button", { type: "submit", class: "danger" }, "Återkalla samtycket"),
      ],
      async (f) => {
        const v = formValues(f);
        await this.change(f, "POST", `${this.path}/consents/${consent.id}/withdraw`, { reason: v.reason }, "Samtycket är återkallat.", "consent");
      },
    );
    return h("details", { class: "more-forms" }, h("summary", {}, "Återkalla"), form);
  }

  // ---- needs and goals

  needsGoalsSection() {
    const p = this.plan;
    const needs = p.needs.length
      ? h("ul", { class: "plain" }, p.needs.map((n) => h("li", {}, n.description, h("span", { class: "meta" }, ` – ${orgName(n.created_by_organisation_id)}`))))
      : h("p", { class: "empty" }, "Inga behov är beskrivna.");
    const needText = Object.fromEntries(p.needs.map((n) => [n.id, n.description]));
    const goals = p.goals.length
      ? h(
          "ul",
          { class: "plain" },
          p.goals.map((g) =>
            h(
              "li",
              {},
              g.description,
              g.target_date ? ` (senast ${formatDate(g.target_date)})` : "",
              g.need_id ? h("span", { class: "meta" }, ` – för behovet ”${needText[g.need_id] || ""}”`) : "",
            ),
          ),
        )
      : h("p", { class: "empty" }, "Inga mål är satta.");
    const sec = section("Behov och mål", h("h3", {}, "Behov"), needs);
    sec.dataset.section = "needs";
    if (this.editable) {
      sec.append(
        asyncForm(
          { class: "inline-form", "aria-label": "Lägg till behov" },
          [
            field("Nytt behov", h("input", { name: "description", type: "text" }), { required: true }),
            h("button", { type: "submit" }, "Lägg till behov"),
          ],
          async (f) => {
            await this.change(f, "POST", `${this.path}/needs`, { description: formValues(f).description }, "Behovet är tillagt.", "needs");
          },
        ),
      );
    }
    sec.append(h("h3", {}, "Mål"), goals);
    if (this.editable) {
      sec.append(
        asyncForm(
          { class: "stack", "aria-label": "Lägg till mål" },
          [
            field("Nytt mål", h("input", { name: "description", type: "text" }), { required: true }),
            field("Hör till behov", select("need_id", [["", "Inget särskilt behov"], ...p.needs.map((n) => [n.id, n.description])], "")),
            field("Måldatum", h("input", { name: "target_date", type: "date" })),
            h("button", { type: "submit" }, "Lägg till mål"),
          ],
          async (f) => {
            const v = formValues(f);
            await this.change(
              f,
              "POST",
              `${this.path}/goals`,
              { description: v.description, need_id: v.need_id || null, target_date: v.target_date || null },
              "Målet är tillagt.",
              "needs",
            );
          },
        ),
      );
    }
    return sec;
  }

  // ---- actions, grouped by responsible organisation

  actionsSection() {
    const p = this.plan;
    const me = session.me;
    const groups = new Map();
    for (const x of this.orgParticipants()) groups.set(x.organisation_id, []);
    for (const a of p.actions) {
      if (!groups.has(a.responsible_organisation_id)) groups.set(a.responsible_organisation_id, []);
      groups.get(a.responsible_organisation_id).push(a);
    }
    const sec = section("Insatser per ansvarig organisation");
    sec.dataset.section = "actions";
    if (!p.actions.length) sec.append(h("p", { class: "empty" }, "Inga insatser ännu."));
    for (const [orgId, actions] of groups) {
      if (!actions.length) continue;
      const mine = orgId === me.organisation_id;
      sec.append(
        h(
          "div",
          { class: "action-group", "data-org": orgId },
          h("h3", {}, orgName(orgId), mine ? " (din organisation)" : ""),
          h("ul", { class: "actions" }, actions.map((a) => this.actionItem(a, mine))),
        ),
      );
    }
    if (this.editable) sec.append(this.actionForm());
    return sec;
  }

  actionItem(a, mine) {
    const goal = this.plan.goals.find((g) => g.id === a.goal_id);
    const period = a.start_date || a.end_date ? `${formatDate(a.start_date) || "…"} – ${formatDate(a.end_date) || "…"}` : "";
    const li = h(
      "li",
      { class: `action action-${a.status}`, "data-action-id": a.id },
      h("p", { class: "action-title" }, a.description),
      h(
        "p",
        { class: "meta" },
        badge(ACTION_STATUS[a.status] || a.status, a.status),
        a.phase ? ` · Fas: ${PHASE[a.phase] || a.phase}` : "",
        period ? ` · ${period}` : "",
        goal ? ` · Mål: ${goal.description}` : "",
        ` · Föreslagen av ${orgName(a.proposed_by_organisation_id)}`,
      ),
      a.status === "disputed" && a.dispute_reason ? h("p", { class: "dispute-reason" }, `Skäl till bestridandet: ${a.dispute_reason}`) : null,
    );
    if (!(mayAuthor() && OPEN.has(this.plan.status))) return li;
    const path = `${this.path}/actions/${a.id}`;
    const proposedByUs = a.proposed_by_organisation_id === session.me.organisation_id;
    if (mine) this.decisionControls(li, a, path);
    if (a.status === "disputed" && proposedByUs) li.append(this.reassignForm(a, path));
    if ((mine || proposedByUs) && ["proposed", "disputed", "accepted", "started"].includes(a.status)) {
      li.append(
        h(
          "div",
          { class: "button-row" },
          button(
            "Stryk insatsen",
            async () => {
              await this.change(null, "PATCH", path, { status: "cancelled" }, `Insatsen ”${a.description}” är struken.`, "actions");
            },
            { class: "danger", "aria-label": `Stryk insatsen ${a.description}` },
          ),
        ),
      );
    }
    return li;
  }

  // A disputed action goes back to its proposer, who gives it to another organisation (a
  // kommun taking it on itself has accepted it).
  reassignForm(a, path) {
    const options = this.orgParticipants()
      .filter((x) => x.organisation_id !== a.responsible_organisation_id)
      .map((x) => [x.organisation_id, x.organisation_name || orgName(x.organisation_id)]);
    if (!options.length) return null;
    const form = asyncForm(
      { class: "stack compact", "aria-label": `Ge insatsen ${a.description} till en annan organisation` },
      [
        field("Ny ansvarig organisation", select("responsible_organisation_id", options, options[0][0])),
        h("button", { type: "submit" }, "Ge insatsen till organisationen"),
      ],
      async (f) => {
        const target = formValues(f).responsible_organisation_id;
        await this.change(
          f,
          "PATCH",
          path,
          { responsible_organisation_id: target },
          `Insatsen ”${a.description}” ligger nu hos ${orgName(target)}.`,
          "actions",
        );
      },
    );
    return h("details", { class: "more-forms" }, h("summary", {}, "Ge insatsen till en annan organisation"), form);
  }

  decisionControls(li, a, path) {
    if (a.status === "proposed") {
      const acceptButton = button(
        "Acceptera insatsen",
        async (event) => {
          const clicked = event.currentTarget;
          clicked.disabled = true;
          const ok = await this.change(null, "POST", `${path}/accept`, undefined, `Insatsen ”${a.description}” är accepterad.`, "actions");
          if (!ok) clicked.disabled = false;
        },
        { class: "primary", "aria-label": `Acceptera insatsen ${a.description}` },
      );
      const disputeForm = asyncForm(
        { class: "stack compact", "aria-label": `Bestrid insatsen ${a.description}` },
        [
          field("Varför bestrider ni insatsen?", h("textarea", { name: "reason", rows: "2" }), { required: true }),
          h("button", { type: "submit", class: "danger" }, "Bestrid insatsen"),
        ],
        async (f) => {
          await this.change(f, "POST", `${path}/dispute`, { reason: formValues(f).reason }, "Insatsen är bestriden.", "actions");
        },
      );
      li.append(
        h("div", { class: "button-row" }, acceptButton),
        h("details", { class: "more-forms" }, h("summary", {}, "Bestrid insatsen"), disputeForm),
      );
    } else if (a.status === "accepted" || a.status === "started") {
      const next = a.status === "accepted" ? ["started", "Markera som påbörjad", "Insatsen är påbörjad."] : ["completed", "Markera som slutförd", "Insatsen är slutförd."];
      li.append(
        h(
          "div",
          { class: "button-row" },
          button(next[1], async () => {
            await this.change(null, "PATCH", path, { status: next[0] }, next[2], "actions");
          }, { "aria-label": `${next[1]}: ${a.description}` }),
        ),
      );
    }
  }

  actionForm() {
    const p = this.plan;
    const orgs = this.orgParticipants().map((x) => [x.organisation_id, x.organisation_name || orgName(x.organisation_id)]);
    return asyncForm(
      { class: "stack", "aria-label": "Lägg till insats" },
      [
        h("h3", {}, "Lägg till insats"),
        field("Beskrivning av insatsen", h("textarea", { name: "description", rows: "2" }), { required: true }),
        field("Ansvarig organisation", select("responsible_organisation_id", orgs, session.me.organisation_id), {
          hint: "En insats för en annan organisation blir ett förslag som den organisationen accepterar eller bestrider.",
        }),
        field("Fas i vårdkedjan", select("phase", [["", "Ingen särskild fas"], ...Object.entries(PHASE)], "eftervard")),
        field("Hör till mål", select("goal_id", [["", "Inget särskilt mål"], ...p.goals.map((g) => [g.id, g.description])], "")),
        field("Startdatum", h("input", { name: "start_date", type: "date" })),
        field("Slutdatum", h("input", { name: "end_date", type: "date" })),
        h("button", { type: "submit" }, "Lägg till insats"),
      ],
      async (f) => {
        const v = formValues(f);
        await this.change(
          f,
          "POST",
          `${this.path}/actions`,
          {
            description: v.description,
            responsible_organisation_id: v.responsible_organisation_id,
            phase: v.phase || null,
            goal_id: v.goal_id || null,
            start_date: v.start_date || null,
            end_date: v.end_date || null,
          },
          "Insatsen är tillagd.",
          "actions",
        );
      },
    );
  }

  // ---- version history

  versionsSection() {
    const shown = h("div", { class: "version-snapshot", "aria-live": "polite" });
    const rows = [...this.versions].sort((a, b) => b.version - a.version);
    const table = h(
      "table",
      { class: "table versions" },
      h("caption", { class: "visually-hidden" }, "Planens versioner, senaste först"),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Version"),
          h("th", { scope: "col" }, "Ändring"),
          h("th", { scope: "col" }, "Av"),
          h("th", { scope: "col" }, "När"),
          h("th", { scope: "col" }, h("span", { class: "visually-hidden" }, "Visa")),
        ),
      ),
      h(
        "tbody",
        {},
        rows.map((v) =>
          h(
            "tr",
            {},
            h("th", { scope: "row" }, String(v.version)),
            h("td", {}, CHANGE[v.change] || v.change),
            h("td", {}, `${v.changed_by_name || v.changed_by}, ${orgName(v.changed_by_organisation_id)}`),
            h("td", {}, formatDateTime(v.changed_at)),
            h(
              "td",
              {},
              button(
                "Visa",
                async () => {
                  try {
                    const { data } = await api("GET", `${this.path}/versions/${v.version}`);
                    shown.replaceChildren(this.snapshotView(data));
                    shown.querySelector("h3").focus();
                  } catch (error) {
                    shown.replaceChildren(errorBox(error));
                  }
                },
                { "aria-label": `Visa version ${v.version}` },
              ),
            ),
          ),
        ),
      ),
    );
    const sec = section("Versionshistorik", rows.length ? table : h("p", { class: "empty" }, "Ingen historik."), shown);
    sec.dataset.section = "versions";
    return sec;
  }

  snapshotView(version) {
    const s = version.snapshot || {};
    const actions = s.actions || [];
    return h(
      "div",
      { class: "snapshot" },
      h("h3", { tabindex: "-1" }, `Version ${version.version}: ${CHANGE[version.change] || version.change}`),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Rubrik"),
        h("dd", {}, s.title || ""),
        h("dt", {}, "Status"),
        h("dd", {}, PLAN_STATUS[s.status] || s.status || ""),
        h("dt", {}, "Deltagare"),
        h("dd", {}, (s.participants || []).map((x) => x.organisation_name || x.name || PARTICIPANT_KIND[x.kind]).join(", ") || "–"),
        h("dt", {}, "Uppföljningsdatum"),
        h("dd", {}, formatDate(s.follow_up_date) || "Ej satt"),
      ),
      actions.length
        ? h(
            "ul",
            { class: "plain" },
            actions.map((a) => h("li", {}, `${a.description} – ${orgName(a.responsible_organisation_id)}: ${ACTION_STATUS[a.status] || a.status}`)),
          )
        : h("p", {}, "Inga insatser i den versionen."),
    );
  }
}

export async function renderPlan(main, planId) {
  const view = new PlanView(main, planId);
  await view.load();
  view.render();
  return view.plan.title;
}
