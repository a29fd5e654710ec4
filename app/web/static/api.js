// The public API, called with the signed-in user's bearer token. The token lives in
// sessionStorage only (gone when the tab closes) and never in a URL.

const TOKEN_KEY = "samplan.token";

export const session = {
  get token() {
    return sessionStorage.getItem(TOKEN_KEY);
  },
  set token(value) {
    if (value) sessionStorage.setItem(TOKEN_KEY, value);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
  me: null,
  orgs: new Map(),
  clear() {
    this.token = null;
    this.me = null;
    this.orgs = new Map();
  },
};

export class ApiError extends Error {
  constructor(status, problem) {
    super((problem && (problem.detail || problem.title)) || `HTTP ${status}`);
    this.status = status;
    this.problem = problem || {};
  }

  get errors() {
    return Array.isArray(this.problem.errors) ? this.problem.errors : [];
  }
}

let onUnauthorized = () => {};
export function setUnauthorizedHandler(handler) {
  onUnauthorized = handler;
}

function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

// method, path and options: body (JSON), ifMatch (an ETag), accept, token (to try one before keeping it).
export async function api(method, path, { body, ifMatch, accept, token, raw } = {}) {
  const headers = { Accept: accept || "application/json" };
  const bearer = token || session.token;
  if (bearer) headers.Authorization = `Bearer ${bearer}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (ifMatch) headers["If-Match"] = ifMatch;
  if (method === "POST") headers["Idempotency-Key"] = newKey();
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
      redirect: "error",
    });
  } catch {
    throw new ApiError(0, { title: "network" });
  }
  if (!response.ok) {
    let problem = {};
    try {
      problem = await response.json();
    } catch {
      problem = {};
    }
    if (response.status === 401 && !token) onUnauthorized();
    throw new ApiError(response.status, problem);
  }
  const etag = response.headers.get("ETag");
  if (raw) return { response, etag };
  const text = await response.text();
  const data = text ? JSON.parse(text) : null;
  return { data, etag, status: response.status };
}

// Every item of a paginated list ({items, next_cursor}), following cursors up to a bound.
export async function listAll(path, { maxPages = 20 } = {}) {
  const items = [];
  let cursor = null;
  for (let page = 0; page < maxPages; page += 1) {
    const sep = path.includes("?") ? "&" : "?";
    const url = cursor ? `${path}${sep}limit=200&cursor=${encodeURIComponent(cursor)}` : `${path}${sep}limit=200`;
    const { data } = await api("GET", url);
    if (Array.isArray(data)) return data;
    items.push(...(data.items || []));
    cursor = data.next_cursor;
    if (!cursor) break;
  }
  return items;
}

export async function loadOrganisations() {
  const orgs = await listAll("/api/v1/organisations");
  session.orgs = new Map(orgs.map((o) => [o.id, o]));
  return session.orgs;
}

export function orgName(id) {
  if (!id) return "";
  const org = session.orgs.get(id);
  return org ? org.name : "Okänd organisation";
}

export function hasRole(...roles) {
  return Boolean(session.me && session.me.roles.some((r) => roles.includes(r)));
}

export function mayAuthor() {
  return hasRole("handlaggare", "samordnare", "system");
}
