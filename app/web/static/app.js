// Samplan's thin web client: a hash router over views that use only the public API.
// Routes carry ids only; personal numbers and tokens never appear in the address bar.

import { api, ApiError, hasRole, loadOrganisations, orgName, session, setUnauthorizedHandler } from "./api.js";
import { clear, h } from "./dom.js";
import { ROLE } from "./texts.js";
import { errorBox, loading } from "./ui.js";
import { renderLogin } from "./login.js";
import { renderWorklist } from "./worklist.js";
import { renderClient, renderClients } from "./clients.js";
import { renderPlan } from "./plan.js";
import { renderMeetings } from "./meetings.js";
import { renderRss } from "./rss.js";

const ROUTES = [
  [/^\/login$/, renderLogin, { open: true }],
  [/^\/worklist$/, renderWorklist],
  [/^\/clients$/, renderClients],
  [/^\/clients\/([0-9a-f-]{36})$/, renderClient],
  [/^\/plans\/([0-9a-f-]{36})$/, renderPlan],
  [/^\/plans\/([0-9a-f-]{36})\/meetings$/, renderMeetings],
  [/^\/rss$/, renderRss],
  [/^\/start$/, renderStart],
  [/^\/me$/, renderMe],
];

export function go(path) {
  if (location.hash === `#${path}`) {
    route();
  } else {
    location.hash = path;
  }
}

export function startPath() {
  if (hasRole("handlaggare", "samordnare")) return "/worklist";
  if (hasRole("rss")) return "/rss";
  return "/start";
}

function navLinks() {
  const links = [];
  if (hasRole("handlaggare", "samordnare")) links.push(["/worklist", "Arbetslista"]);
  if (hasRole("handlaggare", "samordnare", "lasare", "system")) links.push(["/clients", "Klienter"]);
  if (hasRole("rss", "org_admin")) links.push(["/rss", "Uppföljning"]);
  return links;
}

function renderChrome(path) {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  clear(nav);
  clear(who);
  if (!session.me) return;
  nav.append(
    h(
      "ul",
      {},
      navLinks().map(([href, text]) =>
        h(
          "li",
          {},
          h("a", { href: `#${href}`, "aria-current": path.startsWith(href) ? "page" : null }, text),
        ),
      ),
    ),
  );
  const me = session.me;
  const roles = me.roles.map((r) => ROLE[r] || r).join(", ");
  who.append(
    h("p", { class: "who-name" }, me.name || me.subject),
    h("p", { class: "who-org" }, `${roles} · ${orgName(me.organisation_id)}`),
    h("a", { href: "#/me", class: "who-link" }, "Mitt konto"),
    " ",
    h("button", { type: "button", class: "link-button", onclick: signOut }, "Logga ut"),
  );
}

export function signOut() {
  session.clear();
  renderChrome("/login");
  go("/login");
}

export async function signIn(token) {
  const { data } = await api("GET", "/api/v1/me", { token });
  session.token = token;
  session.me = data;
  await loadOrganisations();
}

async function restoreSession() {
  if (session.me || !session.token) return Boolean(session.me);
  try {
    const { data } = await api("GET", "/api/v1/me");
    session.me = data;
    await loadOrganisations();
    return true;
  } catch {
    session.clear();
    return false;
  }
}

async function renderStart(main) {
  const me = session.me;
  main.append(
    h("h1", { tabindex: "-1" }, "Välkommen"),
    h("p", {}, `Du är inloggad som ${me.name || me.subject} (${me.roles.map((r) => ROLE[r] || r).join(", ")}).`),
    h(
      "p",
      {},
      "Din roll har ingen arbetslista. Använd menyn för det din roll får göra, eller API:t för administration.",
    ),
  );
  return "Välkommen";
}

async function renderMe(main) {
  const me = session.me;
  const roles = me.roles.map((r) => ROLE[r] || r).join(", ");
  main.append(
    h("h1", { tabindex: "-1" }, "Mitt konto"),
    h(
      "dl",
      { class: "facts" },
      h("dt", {}, "Namn"),
      h("dd", {}, me.name || me.subject),
      h("dt", {}, "Användar-id"),
      h("dd", { class: "user-id" }, me.user_id),
      h("dt", {}, "Organisation"),
      h("dd", {}, orgName(me.organisation_id)),
      h("dt", {}, "Roller"),
      h("dd", {}, roles),
      me.county ? [h("dt", {}, "Län"), h("dd", {}, me.county)] : null,
    ),
    h("p", { class: "hint" }, "Användar-id behövs när någon annan ska tilldela dig som samordnare."),
  );
  return "Mitt konto";
}

let routing = 0;
let firstView = true;
async function route() {
  const ticket = ++routing;
  const path = location.hash.replace(/^#/, "") || "/";
  const main = document.getElementById("main");
  const signedIn = await restoreSession();
  if (ticket !== routing) return;
  let match = null;
  for (const [pattern, view, options] of ROUTES) {
    const m = path.match(pattern);
    if (m) {
      match = { view, params: m.slice(1), options: options || {} };
      break;
    }
  }
  if (!signedIn && !(match && match.options.open)) {
    location.replace("#/login");
    return;
  }
  if (signedIn && (!match || path === "/login")) {
    location.replace(`#${startPath()}`);
    return;
  }
  renderChrome(path);
  clear(main);
  main.append(loading());
  const container = h("div", { class: "view" });
  let title = "Samplan";
  try {
    title = (await match.view(container, ...match.params)) || title;
  } catch (error) {
    clear(container);
    container.append(h("h1", { tabindex: "-1" }, "Något gick fel"), errorBox(error));
    if (!(error instanceof ApiError)) console.error(error);
  }
  if (ticket !== routing) return;
  clear(main);
  main.append(container);
  document.title = `${title} – Samplan`;
  // After a change of view, focus goes to its heading (screen readers announce the new page);
  // on the first load it stays at the top so that the skip link comes first.
  const heading = main.querySelector("h1");
  if (heading && !firstView) heading.focus();
  firstView = false;
}

setUnauthorizedHandler(() => {
  session.clear();
  sessionStorage.setItem("samplan.notice", "Din inloggning har gått ut. Logga in igen.");
  location.replace("#/login");
});

window.addEventListener("hashchange", route);
window.addEventListener("DOMContentLoaded", route);
