// Sign-in: demo users in dev mode, a pasted token otherwise. OpenID Connect sign-in has its
// place here (PROVIDERS) once an organisation's identity provider is configured.

import { ApiError } from "./api.js";
import { go, signIn, startPath } from "./app.js";
import { field, h, section } from "./dom.js";
import { ORG_KIND, ROLE } from "./texts.js";
import { asyncForm, errorBox, showFormError } from "./ui.js";

// Future identity providers (OpenID Connect, authorization code flow with PKCE): each entry
// would be {name, start()} and get a button below. None is configured yet.
export const PROVIDERS = [];

async function fetchDevUsers() {
  try {
    const response = await fetch("dev-users", { headers: { Accept: "application/json" }, cache: "no-store" });
    if (!response.ok) return null;
    return await response.json();
  } catch {
    return null;
  }
}

function devUserList(users, messageSlot) {
  const list = h("ul", { class: "dev-users" });
  for (const user of users) {
    const roles = user.roles.map((r) => ROLE[r] || r).join(", ");
    const org = user.organisation;
    const label = `${user.name}`;
    const detail = `${roles} · ${org.name} (${ORG_KIND[org.kind] || org.kind}${user.county ? `, län ${user.county}` : ""})`;
    list.append(
      h(
        "li",
        {},
        h(
          "button",
          {
            type: "button",
            class: "dev-user",
            "data-subject": user.subject,
            onclick: async (event) => {
              const clicked = event.currentTarget;
              clicked.disabled = true;
              try {
                await signIn(user.token);
                go(startPath());
              } catch (error) {
                messageSlot.replaceChildren(errorBox(error));
                clicked.disabled = false;
              }
            },
          },
          h("span", { class: "dev-user-name" }, label),
          h("span", { class: "dev-user-detail" }, detail),
        ),
      ),
    );
  }
  return list;
}

export async function renderLogin(main) {
  main.append(h("h1", { tabindex: "-1" }, "Logga in i Samplan"));
  const notice = sessionStorage.getItem("samplan.notice");
  if (notice) {
    sessionStorage.removeItem("samplan.notice");
    main.append(h("p", { class: "alert", role: "alert" }, notice));
  }

  const devUsers = await fetchDevUsers();
  if (devUsers && devUsers.length) {
    const slot = h("div", { class: "form-message" });
    main.append(
      section(
        "Välj en demoanvändare",
        h(
          "p",
          {},
          "Tjänsten körs i utvecklingsläge med påhittade uppgifter. Välj vem du vill vara; du får en färsk åtkomstbiljett.",
        ),
        slot,
        devUserList(devUsers, slot),
      ),
    );
  }

  const tokenInput = h("textarea", {
    name: "token",
    rows: "4",
    autocomplete: "off",
    spellcheck: "false",
  });
  const form = asyncForm(
    { class: "stack", "aria-label": "Logga in med åtkomstbiljett" },
    [
      field("Åtkomstbiljett (JWT)", tokenInput, {
        required: true,
        hint: "Klistra in den åtkomstbiljett (bearer-token) som din organisations inloggningstjänst gav dig.",
      }),
      h("button", { type: "submit", class: "primary" }, "Logga in"),
    ],
    async () => {
      const token = tokenInput.value.trim().replace(/^Bearer\s+/i, "");
      try {
        await signIn(token);
        go(startPath());
      } catch (error) {
        const shown =
          error instanceof ApiError && error.status === 401
            ? new ApiError(401, { detail: "invalid token" })
            : error;
        showFormError(form, shown);
      }
    },
  );
  main.append(section("Logga in med åtkomstbiljett", form));

  main.append(
    section(
      "Logga in med e-legitimation",
      PROVIDERS.length
        ? h(
            "ul",
            {},
            PROVIDERS.map((p) => h("li", {}, h("button", { type: "button", onclick: p.start }, p.name))),
          )
        : h(
            "p",
            {},
            "Inloggning via din organisations identitetstjänst (OpenID Connect) är inte inkopplad ännu.",
          ),
    ),
  );
  return "Logga in";
}
