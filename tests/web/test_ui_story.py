"""The web client at /ui: served with a strict CSP, dev sign-in only in dev mode, and the whole
story in a real browser (Debian's Chromium) against a live server:

a kommun handläggare registers a client and starts a plan, invites the region, the region's user
accepts an action, the plan is activated (after a 412 from a concurrent change and a reload), the
samordnare sees it on the worklist, and the RSS user sees the county's numbers and downloads the CSV.
Screenshots of each page go to test-artifacts/ui/.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.config import Settings
from app.main import create_app
from app.web.routes import CONTENT_SECURITY_POLICY

from .conftest import LiveServer

# ---- helpers ---------------------------------------------------------------------------------


def personnummer(birth: str, serial: str) -> str:
    """A valid 12-digit personnummer: YYYYMMDD + three digits + the Luhn check digit."""
    digits = birth[2:] + serial
    total = 0
    for i, ch in enumerate(digits):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return f"{birth}{serial}{(10 - total % 10) % 10}"


def day(offset: int = 0) -> str:
    return (dt.date.today() + dt.timedelta(days=offset)).isoformat()


# Every view: one h1, every form field labelled, images with alt, named SVGs and controls,
# no skipped heading levels, the page language set, and text contrast of at least 4.5:1.
A11Y_CHECK = """
() => {
  const problems = [];
  const visible = (el) => !!(el.offsetWidth || el.offsetHeight || el.getClientRects().length);
  const h1s = [...document.querySelectorAll('h1')];
  if (h1s.length !== 1) problems.push(`expected one h1, found ${h1s.length}`);
  if (!document.documentElement.lang) problems.push('the page has no lang');
  for (const el of document.querySelectorAll('input, select, textarea')) {
    if (el.type === 'hidden') continue;
    const byFor = el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`);
    if (!(byFor || el.closest('label') || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby'))) {
      problems.push(`unlabelled field ${el.outerHTML.slice(0, 100)}`);
    }
  }
  for (const img of document.querySelectorAll('img')) {
    if (!img.hasAttribute('alt')) problems.push(`image without alt ${img.src}`);
  }
  for (const s of document.querySelectorAll('svg')) {
    if (s.getAttribute('aria-hidden') === 'true') continue;
    if (!(s.getAttribute('aria-label') || s.getAttribute('aria-labelledby') || s.querySelector('title'))) {
      problems.push('svg without an accessible name');
    }
  }
  for (const c of document.querySelectorAll('button, a[href], summary')) {
    if (!(c.textContent.trim() || c.getAttribute('aria-label'))) problems.push(`nameless control ${c.outerHTML.slice(0, 80)}`);
  }
  let previous = 0;
  for (const hd of document.querySelectorAll('h1, h2, h3, h4, h5, h6')) {
    const level = Number(hd.tagName[1]);
    if (previous && level > previous + 1) problems.push(`heading level skips from h${previous} to h${level}: ${hd.textContent}`);
    previous = level;
  }
  const rgb = (s) => (s.match(/[\\d.]+/g) || []).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.5)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  const seen = new Set();
  while (walker.nextNode()) {
    const el = walker.currentNode.parentElement;
    if (!el || seen.has(el) || !walker.currentNode.textContent.trim()) continue;
    seen.add(el);
    if (!visible(el) || el.closest('svg') || el.closest('[disabled]') || el.closest('.visually-hidden')) continue;
    const fg = lum(rgb(getComputedStyle(el).color).slice(0, 3));
    const bg = lum(background(el));
    const ratio = (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
    if (ratio < 4.5) problems.push(`contrast ${ratio.toFixed(2)} for "${el.textContent.trim().slice(0, 40)}"`);
  }
  return problems;
}
"""


class Shots:
    """Numbered full-page screenshots, each after an accessibility check of the view."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.count = 0
        self.taken: list[str] = []

    def __call__(self, page: Any, name: str) -> None:
        problems = page.evaluate(A11Y_CHECK)
        assert problems == [], f"accessibility problems on {name}: {problems}"
        self.count += 1
        path = self.folder / f"{self.count:02d}-{name}.png"
        page.screenshot(path=str(path), full_page=True)
        self.taken.append(path.name)


class ApiClient:
    """The public API for seeding data, as another system would use it."""

    def __init__(self, base_url: str, token: str) -> None:
        self.http = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {token}"}, timeout=20)

    def call(self, method: str, path: str, body: Any = None, etag: str | None = None) -> httpx.Response:
        headers = {"If-Match": etag} if etag else {}
        response = self.http.request(method, path, json=body, headers=headers)
        assert response.status_code < 300, (method, path, response.status_code, response.text)
        return response


def dev_tokens(base_url: str) -> dict[str, str]:
    users = httpx.get(f"{base_url}/ui/dev-users", timeout=10).json()
    return {u["subject"]: u["token"] for u in users}


def api_paths(base_url: str) -> set[str]:
    return set(httpx.get(f"{base_url}/openapi.json", timeout=10).json()["paths"])


def seed_county(base_url: str, tokens: dict[str, str]) -> None:
    """More clients in care in county 01, so that the RSS report has numbers as well as
    suppressed cells: six Stockholm clients with an active plan and a discharge with it, three
    discharged without a plan, and two Huddinge clients (a group too small to show)."""
    sthlm = ApiClient(base_url, tokens["demo-sthlm-handlaggare"])
    region = ApiClient(base_url, tokens["demo-region-handlaggare"])
    huddinge = ApiClient(base_url, tokens["demo-huddinge-handlaggare"])
    orgs = {o["name"]: o["id"] for o in sthlm.call("GET", "/api/v1/organisations?limit=200").json()["items"]}
    sthlm_id, region_id = orgs["Stockholms stad"], orgs["Region Stockholm"]
    now = (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)).isoformat()

    def register(api: ApiClient, n: int, gender: str) -> str:
        body = {
            "personal_number": personnummer(f"19{70 + n:02d}0{1 + n % 9}1{n % 10}", f"{300 + n}"),
            "given_name": f"Testperson{n}",
            "family_name": "Seedsson",
            "gender": gender,
        }
        client_id: str = api.call("POST", "/api/v1/clients", body).json()["id"]
        return client_id

    for n in range(6):
        client_id = register(sthlm, n, "kvinna" if n % 2 else "man")
        episode = sthlm.call(
            "POST", f"/api/v1/clients/{client_id}/episodes", {"phase": "lvm_vard", "start_date": day(-90)}
        ).json()
        r = sthlm.call(
            "POST",
            "/api/v1/plans",
            {
                "client_id": client_id,
                "title": f"SIP {n}",
                "overall_responsible_organisation_id": sthlm_id,
                "follow_up_date": day(30),
                "client_participated": True,
            },
        )
        plan_id = r.json()["id"]
        path = f"/api/v1/plans/{plan_id}"
        sthlm.call("POST", f"{path}/participants", {"kind": "huvudman", "organisation_id": region_id})
        sthlm.call(
            "POST",
            f"{path}/consents",
            {
                "given_at": now,
                "obtained_by": "Hanna Handläggare",
                "method": "written",
                "scope_organisation_ids": [sthlm_id, region_id],
            },
        )
        sthlm.call(
            "POST",
            f"{path}/actions",
            {"description": "Boendestöd", "responsible_organisation_id": sthlm_id, "phase": "eftervard"},
        )
        plan = sthlm.call(
            "POST",
            f"{path}/actions",
            {"description": "Beroendevård", "responsible_organisation_id": region_id, "phase": "eftervard"},
        ).json()
        proposed = next(a for a in plan["actions"] if a["status"] == "proposed")
        accepted = region.call("POST", f"{path}/actions/{proposed['id']}/accept")
        sthlm.call("POST", f"{path}/transitions", {"to": "active"}, etag=accepted.headers["ETag"])
        sthlm.call("PATCH", f"/api/v1/clients/{client_id}/episodes/{episode['id']}", {"end_date": day(0)})
    for n in range(6, 9):
        client_id = register(sthlm, n, "man")
        sthlm.call(
            "POST",
            f"/api/v1/clients/{client_id}/episodes",
            {"phase": "lvm_vard", "start_date": day(-120), "end_date": day(-5)},
        )
    for n in range(9, 11):
        client_id = register(huddinge, n, "kvinna")
        huddinge.call(
            "POST", f"/api/v1/clients/{client_id}/episodes", {"phase": "lvm_vard", "start_date": day(-30)}
        )


# ---- the web client as files and headers (no browser) ---------------------------------------


def _app(tmp_path: Path, **overrides: Any) -> Any:
    # Every setting that matters given here, so that the environment (SAMPLAN_*) cannot change it.
    sqlite = f"sqlite+aiosqlite:///{(tmp_path / 'samplan.db').as_posix()}"
    values: dict[str, Any] = {
        "env": "dev",
        "data_dir": tmp_path,
        "database_url": sqlite,
        "migration_database_url": sqlite,
        "dev_issuer_enabled": True,
        "operator_org_number": "",
    }
    values.update(overrides)
    return create_app(Settings(**values))


def _client(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


async def test_ui_is_served_with_a_strict_content_security_policy(tmp_path: Path) -> None:
    async with _client(_app(tmp_path)) as client:
        index = await client.get("/ui/")
        assert index.status_code == 200
        assert index.headers["content-type"].startswith("text/html")
        csp = index.headers["content-security-policy"]
        assert csp == CONTENT_SECURITY_POLICY
        assert "default-src 'self'" in csp and "'unsafe-inline'" not in csp and "'unsafe-eval'" not in csp
        assert index.headers["x-content-type-options"] == "nosniff"
        html = index.text
        assert '<html lang="sv">' in html
        # No inline script and nothing from elsewhere: every script and stylesheet is a local file.
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == []
        assert "http://" not in html and "https://" not in html
        assert " style=" not in html
        for asset in re.findall(r'(?:src|href)="([^"#]+)"', html):
            response = await client.get(f"/ui/{asset}")
            assert response.status_code == 200, asset
            assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY

        app_js = await client.get("/ui/app.js")
        assert app_js.headers["content-type"].startswith("text/javascript")
        assert "import " in app_js.text
        css = await client.get("/ui/app.css")
        assert css.headers["content-type"].startswith("text/css")

        bare = await client.get("/ui", follow_redirects=False)
        assert bare.status_code == 307 and bare.headers["location"] == "/ui/"


async def test_ui_serves_only_its_own_files(tmp_path: Path) -> None:
    async with _client(_app(tmp_path)) as client:
        for path in (
            "/ui/routes.py",
            "/ui/..%2Froutes.py",
            "/ui/%2e%2e/routes.py",
            "/ui/nothing.js",
            "/ui/.hidden.js",
        ):
            response = await client.get(path)
            assert response.status_code == 404, path


def test_static_files_load_nothing_from_the_internet() -> None:
    static = Path(__file__).resolve().parents[2] / "app" / "web" / "static"
    files = sorted(static.iterdir())
    assert {f.name for f in files} >= {"index.html", "app.js", "app.css"}
    for f in files:
        text = f.read_text()
        # The SVG namespace is a name, not a fetch.
        outside = [
            u for u in re.findall(r"https?://[^\s\"'`)]+", text) if not u.startswith("http://www.w3.org/")
        ]
        assert outside == [], (f.name, outside)
        if f.suffix == ".js":
            assert "innerHTML" not in text and "eval(" not in text, f.name
            assert "localStorage" not in text, f.name  # the token lives in sessionStorage only


async def test_dev_users_in_dev_mode_carry_fresh_working_tokens(tmp_path: Path) -> None:
    async with _client(_app(tmp_path)) as client:
        response = await client.get("/ui/dev-users")
        assert response.status_code == 200
        assert response.headers["cache-control"] == "no-store"
        users = response.json()
        subjects = {u["subject"] for u in users}
        assert {
            "demo-sthlm-handlaggare",
            "demo-region-handlaggare",
            "demo-region-rss",
            "demo-sthlm-samordnare",
        } <= subjects
        rss = next(u for u in users if u["subject"] == "demo-region-rss")
        assert rss["county"] == "01" and rss["roles"] == ["rss"]
        assert rss["organisation"]["org_number"] == "2321000016"
        assert all(u["token"].count(".") == 2 for u in users)


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({"dev_issuer_enabled": False}, id="dev-issuer-off"),
        pytest.param(
            {
                "env": "prod",
                "dev_issuer_enabled": False,
                "audit_pepper": "a-production-pepper-of-at-least-32-characters",
                "operator_org_number": "232100-0016",
                "database_url": "postgresql+asyncpg://samplan_app@127.0.0.1:1/samplan",
                "migration_database_url": "postgresql+asyncpg://samplan_app@127.0.0.1:1/samplan",
            },
            id="prod",
        ),
    ],
)
async def test_dev_users_are_absent_outside_dev_mode(tmp_path: Path, overrides: dict[str, Any]) -> None:
    async with _client(_app(tmp_path, **overrides)) as client:
        response = await client.get("/ui/dev-users")
        assert response.status_code == 404
        assert "token" not in response.text
        # The client itself is still served: people sign in with their organisation's token.
        assert (await client.get("/ui/")).status_code == 200


# ---- the whole story in a browser -----------------------------------------------------------

_IGNORED_CONSOLE = re.compile(r"Failed to load resource: the server responded with a status of (4\d\d)")


def _new_page(browser: Any, base_url: str, errors: list[str]) -> Any:
    context = browser.new_context(
        base_url=base_url, viewport={"width": 1280, "height": 900}, locale="sv-SE", accept_downloads=True
    )
    page = context.new_page()
    page.set_default_timeout(15_000)

    def on_console(message: Any) -> None:
        if message.type == "error" and not _IGNORED_CONSOLE.search(message.text):
            errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    # Nothing may be fetched from anywhere but the service itself.
    page.route(
        re.compile(r"^(?!" + re.escape(base_url) + r").*"),
        lambda route: (errors.append(f"outside request: {route.request.url}"), route.abort()),
    )
    return page


def _sign_in(page: Any, subject: str, expected_h1: str) -> None:
    from playwright.sync_api import expect

    page.goto("/ui/")
    page.locator(f'button.dev-user[data-subject="{subject}"]').click()
    expect(page.locator("h1")).to_have_text(expected_h1)


@pytest.mark.browser
def test_whole_story_in_the_browser(chromium: Any, live_server: LiveServer, artifacts: Path) -> None:
    from playwright.sync_api import expect

    base = live_server.base_url
    paths = api_paths(base)
    meetings_available = "/api/v1/plans/{plan_id}/meetings" in paths
    coverage_available = "/api/v1/reports/coverage" in paths
    errors: list[str] = []
    shot = Shots(artifacts)
    pnr = personnummer("19850314", "238")
    client_name = "Kim Andersson"

    # -- the kommun's handläggare: sign in, worklist, register the client
    hanna = _new_page(chromium, base, errors)
    hanna.goto("/ui/")
    expect(hanna.locator("h1")).to_have_text("Logga in i Samplan")
    shot(hanna, "inloggning")
    hanna.locator('button.dev-user[data-subject="demo-sthlm-handlaggare"]').click()
    expect(hanna.locator("h1")).to_have_text("Arbetslista")
    assert "token" not in hanna.url and "eyJ" not in hanna.url
    assert hanna.evaluate("() => sessionStorage.getItem('samplan.token')").startswith("eyJ")
    assert hanna.evaluate("() => localStorage.length") == 0
    shot(hanna, "arbetslista-handlaggare-tom")

    hanna.get_by_role("link", name="Klienter", exact=True).click()
    expect(hanna.locator("h1")).to_have_text("Klienter")
    search = hanna.get_by_role("search")
    search.get_by_label("Personnummer eller samordningsnummer").fill(pnr)
    search.get_by_role("button", name="Sök").click()
    expect(hanna.get_by_text("Ingen klient med det numret är känd för din organisation")).to_be_visible()
    assert pnr not in hanna.url and pnr[:8] not in hanna.url
    register = hanna.get_by_role("form", name="Registrera klient")
    expect(register.get_by_label("Personnummer eller samordningsnummer")).to_have_value(pnr)
    register.get_by_label("Förnamn").fill("Kim")
    register.get_by_label("Efternamn").fill("Andersson")
    register.get_by_label("Kön").select_option("kvinna")
    shot(hanna, "klient-sok-och-registrera")
    register.get_by_role("button", name="Registrera klient").click()
    expect(hanna.locator("h1")).to_have_text(f"Klient: {client_name}")
    assert pnr not in hanna.url

    # -- the care chain: LVM care with discharge planned within 14 days
    hanna.get_by_text("Ny episod i vårdkedjan").click()
    episode = hanna.get_by_role("form", name="Registrera vårdepisod")
    episode.get_by_label("Fas").select_option("lvm_vard")
    episode.get_by_label("Startdatum").fill(day(-60))
    episode.get_by_label("Planerat slutdatum").fill(day(10))
    episode.get_by_role("button", name="Registrera episod").click()
    expect(hanna.locator(".timeline-episode")).to_contain_text("LVM-vård")

    # -- start the plan
    start = hanna.get_by_role("form", name="Starta ny SIP")
    start.get_by_label("Rubrik").fill("SIP inför utskrivning från LVM-hemmet")
    start.get_by_label("Uppföljningsdatum").fill(day(5))
    start.get_by_role("button", name="Starta planen").click()
    expect(hanna.locator("h1")).to_have_text("SIP inför utskrivning från LVM-hemmet")
    plan_url = hanna.url
    plan_id = plan_url.rsplit("/", 1)[-1]
    expect(hanna.locator(".plan-meta .badge")).to_have_text("Utkast")

    # invite the region
    participant = hanna.get_by_role("form", name="Lägg till deltagare")
    participant.get_by_label("Typ av deltagare").select_option("huvudman")
    participant.get_by_label("Organisation", exact=True).select_option(label="Region Stockholm (region)")
    participant.get_by_role("button", name="Lägg till deltagare").click()
    expect(hanna.locator(".participants")).to_contain_text("Region Stockholm")

    # consent covering both huvudmän
    consent = hanna.get_by_role("form", name="Registrera samtycke")
    expect(consent.get_by_label("Region Stockholm")).to_be_checked()
    consent.get_by_role("button", name="Registrera samtycke").click()
    expect(hanna.locator(".consent-active")).to_contain_text("Gällande samtycke")

    # need, goal and two actions: one our own, one proposed to the region
    need = hanna.get_by_role("form", name="Lägg till behov")
    need.get_by_label("Nytt behov").fill("Boende och stöd efter utskrivning")
    need.get_by_role("button", name="Lägg till behov").click()
    expect(hanna.locator('[data-section="needs"] ul.plain').first).to_contain_text(
        "Boende och stöd efter utskrivning"
    )
    goal = hanna.get_by_role("form", name="Lägg till mål")
    goal.get_by_label("Nytt mål").fill("Eget boende inom sex månader")
    goal.get_by_label("Hör till behov").select_option(label="Boende och stöd efter utskrivning")
    goal.get_by_role("button", name="Lägg till mål").click()
    expect(hanna.locator('[data-section="needs"]')).to_contain_text(
        "för behovet ”Boende och stöd efter utskrivning”"
    )

    action = hanna.get_by_role("form", name="Lägg till insats")
    action.get_by_label("Beskrivning av insatsen").fill("Boendestöd efter utskrivning")
    action.get_by_label("Ansvarig organisation").select_option(label="Stockholms stad")
    action.get_by_role("button", name="Lägg till insats").click()
    expect(
        hanna.locator('.action-group:has(h3:text-is("Stockholms stad (din organisation)"))')
    ).to_contain_text("Accepterad")
    action = hanna.get_by_role("form", name="Lägg till insats")
    action.get_by_label("Beskrivning av insatsen").fill("Abstinensbehandling och läkemedelsgenomgång")
    action.get_by_label("Ansvarig organisation").select_option(label="Region Stockholm")
    action.get_by_label("Fas i vårdkedjan").select_option("eftervard")
    action.get_by_role("button", name="Lägg till insats").click()
    region_group = hanna.locator('.action-group:has(h3:text-is("Region Stockholm"))')
    expect(region_group).to_contain_text("Föreslagen, väntar på svar")
    action = hanna.get_by_role("form", name="Lägg till insats")
    action.get_by_label("Beskrivning av insatsen").fill("Stöd till eget boende")
    action.get_by_label("Ansvarig organisation").select_option(label="Region Stockholm")
    action.get_by_role("button", name="Lägg till insats").click()
    expect(region_group.locator("li.action")).to_have_count(2)

    # activation is refused while the region has not accepted: in plain Swedish
    hanna.get_by_role("button", name="Aktivera planen").click()
    refusal = hanna.locator(".activation-refusal")
    expect(refusal).to_contain_text("Planen kan inte aktiveras ännu")
    expect(refusal).to_contain_text(
        "Insatsen ”Abstinensbehandling och läkemedelsgenomgång” är inte accepterad av den ansvariga organisationen"
    )
    expect(refusal).to_contain_text("Insatsen ”Stöd till eget boende” är inte accepterad")
    shot(hanna, "plan-aktivering-nekad")

    # -- the kallelse
    hanna.get_by_role("link", name="Möten och kallelser").click()
    expect(hanna.locator("h1")).to_contain_text("Möten – ")
    if meetings_available:
        invite = hanna.get_by_role("form", name="Ny kallelse")
        invite.get_by_label("Syfte").fill("SIP-möte inför utskrivning från LVM-hemmet")
        invite.get_by_label("Frågor att ta upp").fill(
            "Boende efter utskrivning\nLäkemedelsassisterad behandling"
        )
        invite.get_by_label("Plats eller länk").fill("Socialförvaltningen, rum 4")
        expect(invite.get_by_label("Region Stockholm")).to_be_checked()
        invite.get_by_role("button", name="Skicka kallelse").click()
        expect(hanna.locator("article.meeting")).to_contain_text("Inte besvarad")
        shot(hanna, "moten-kallelse")
    else:
        expect(hanna.locator('[data-unavailable="meetings"]')).to_be_visible()
        shot(hanna, "moten-ej-tillgangligt")

    # Hanna opens the plan again and leaves it on screen (its version is now the newest).
    hanna.goto(plan_url)
    expect(hanna.locator("h1")).to_have_text("SIP inför utskrivning från LVM-hemmet")

    # -- the region's user: the proposed action on the worklist, accept it, answer the kallelse
    rita = _new_page(chromium, base, errors)
    _sign_in(rita, "demo-region-handlaggare", "Arbetslista")
    rows = rita.locator('tr[data-signal="action_unanswered"]', has_text=client_name)
    expect(rows).to_have_count(2)  # one signal per action proposed to the region
    row = rows.first
    expect(row).to_contain_text("Insats väntar på svar")
    shot(rita, "arbetslista-region")
    row.get_by_role("link", name=re.compile("Öppna planen")).click()
    expect(rita.locator("h1")).to_have_text("SIP inför utskrivning från LVM-hemmet")
    rita.get_by_role("button", name="Acceptera insatsen Abstinensbehandling och läkemedelsgenomgång").click()
    expect(
        rita.locator('.action-group:has(h3:text-is("Region Stockholm (din organisation)"))')
    ).to_contain_text("Accepterad")
    # ... and disputes the other: "that is the kommun's job", with the reason visible to all
    rita_disputed = rita.locator("li.action", has_text="Stöd till eget boende")
    rita_disputed.locator("summary", has_text="Bestrid insatsen").click()
    dispute = rita.get_by_role("form", name="Bestrid insatsen Stöd till eget boende")
    dispute.get_by_label("Varför bestrider ni insatsen?").fill(
        "Boendet är kommunens ansvar enligt socialtjänstlagen."
    )
    dispute.get_by_role("button", name="Bestrid insatsen").click()
    expect(rita.locator("li.action", has_text="Stöd till eget boende")).to_contain_text("Bestriden")
    expect(rita.get_by_role("button", name=re.compile("Acceptera insatsen"))).to_have_count(0)
    shot(rita, "plan-region-accepterar-och-bestrider")
    if meetings_available:
        rita.get_by_role("link", name="Möten och kallelser").click()
        answer = rita.get_by_role("form", name="Svara på kallelsen")
        answer.get_by_label("Kommer", exact=True).check()
        answer.get_by_label("Kommentar").fill("Läkaren från beroendecentrum kommer.")
        answer.get_by_role("button", name="Skicka svar").click()
        expect(rita.locator("tr[data-invitee]")).to_contain_text("Kommer")
        shot(rita, "moten-svar-region")

    # -- back to Hanna, whose screen shows an older version: 412, a clear message, reload
    hanna.get_by_role("button", name="Aktivera planen").click()
    conflict = hanna.locator(".alert-conflict")
    expect(conflict).to_contain_text("Någon annan har ändrat planen")
    expect(conflict).to_be_focused()
    shot(hanna, "plan-konflikt-412")
    conflict.get_by_role("button", name="Ladda om planen").click()
    expect(region_group).to_contain_text("Accepterad")
    # the disputed action is visible with its reason; the kommun takes it on itself
    disputed = hanna.locator("li.action", has_text="Stöd till eget boende")
    expect(disputed).to_contain_text("Bestriden")
    expect(disputed).to_contain_text("Skäl till bestridandet: Boendet är kommunens ansvar")
    expect(hanna.locator('[data-section="status"]')).to_contain_text("1 insats är bestridd")
    shot(hanna, "plan-bestriden-insats")
    disputed.locator("summary", has_text="Ge insatsen till en annan organisation").click()
    reassign = hanna.get_by_role("form", name="Ge insatsen Stöd till eget boende till en annan organisation")
    reassign.get_by_label("Ny ansvarig organisation").select_option(label="Stockholms stad")
    reassign.get_by_role("button", name="Ge insatsen till organisationen").click()
    expect(
        hanna.locator('.action-group:has(h3:text-is("Stockholms stad (din organisation)"))')
    ).to_contain_text("Stöd till eget boende")
    hanna.get_by_role("button", name="Aktivera planen").click()
    expect(hanna.locator(".plan-meta .badge")).to_have_text("Aktiv")
    expect(hanna.get_by_role("button", name="Avsluta planen")).to_be_visible()

    # the version history, and one earlier version
    history = hanna.locator("table.versions")
    expect(history).to_contain_text("Planen aktiverades")
    expect(history).to_contain_text("Insats accepterades")
    hanna.get_by_role("button", name="Visa version 1", exact=True).click()
    expect(hanna.locator(".snapshot")).to_contain_text("Utkast")
    shot(hanna, "plan-aktiv-med-historik")

    if meetings_available:
        hanna.get_by_role("link", name="Möten och kallelser").click()
        hanna.get_by_text("Dokumentera mötet", exact=True).click()
        record = hanna.get_by_role("form", name="Dokumentera mötet")
        record.get_by_label("Deltagare").fill("Hanna Handläggare, socialsekreterare\nKim Andersson, klient")
        record.get_by_label("Anteckningar från mötet").fill(
            "Boendestöd från utskrivningen. Regionen ansvarar för LARO."
        )
        record.get_by_role("button", name="Spara dokumentationen").click()
        expect(hanna.locator("article.meeting h2")).to_contain_text("(hållet)")
        expect(hanna.locator("article.meeting .record")).to_contain_text("Regionen ansvarar för LARO")
        shot(hanna, "moten-dokumenterat")

    # -- the handläggare makes Sam the client's samordnare: a samordnare reaches clients only
    #    through their assignments, so before it Sam cannot find the client at all
    sam = _new_page(chromium, base, errors)
    _sign_in(sam, "demo-sthlm-samordnare", "Arbetslista")
    expect(sam.locator(f'tr:has-text("{client_name}")')).to_have_count(0)
    sam_token = dev_tokens(base)["demo-sthlm-samordnare"]
    sam_id = httpx.get(f"{base}/api/v1/me", headers={"Authorization": f"Bearer {sam_token}"}, timeout=10).json()[
        "user_id"
    ]
    hanna.get_by_role("link", name="Klienter", exact=True).click()
    hanna.get_by_role("search").get_by_label("Personnummer eller samordningsnummer").fill(pnr)
    hanna.get_by_role("search").get_by_role("button", name="Sök").click()
    expect(hanna.locator("h1")).to_have_text(f"Klient: {client_name}")
    hanna.locator("details.more-forms summary", has_text="Tilldela någon annan").click()
    assign = hanna.get_by_role("form", name="Tilldela eller överlämna samordnare")
    assign.get_by_label("Samordnarens användar-id").fill(sam_id)
    assign.get_by_role("button", name="Tilldela").click()
    expect(hanna.locator("li", has_text="nuvarande samordnare")).to_contain_text("Sam Samordnare")

    # -- the samordnare finds the client, sees the timeline and the follow-up on the worklist
    sam.get_by_role("link", name="Klienter", exact=True).click()
    sam.get_by_role("search").get_by_label("Personnummer eller samordningsnummer").fill(pnr)
    sam.get_by_role("search").get_by_role("button", name="Sök").click()
    expect(sam.locator("h1")).to_have_text(f"Klient: {client_name}")
    expect(sam.locator("li", has_text="nuvarande samordnare")).to_contain_text("Sam Samordnare")
    timeline = sam.locator("ol.timeline")
    expect(timeline).to_contain_text("LVM-vård")
    expect(timeline).to_contain_text("SIP aktiverad")
    expect(timeline).to_contain_text("Samordnare: Sam Samordnare")
    if meetings_available:
        expect(timeline).to_contain_text("SIP-möte")
    shot(sam, "klient-tidslinje-samordnare")
    sam.get_by_role("link", name="Arbetslista").click()
    followup = sam.locator('tr[data-signal="follow_up_due"]', has_text=client_name)
    expect(followup).to_contain_text("Uppföljning närmar sig")
    expect(followup).to_contain_text(day(5))
    shot(sam, "arbetslista-samordnare")
    followup.get_by_role("link", name=re.compile("Öppna planen")).click()
    expect(sam.locator("h1")).to_have_text("SIP inför utskrivning från LVM-hemmet")
    expect(sam.locator(".plan-meta .badge")).to_have_text("Aktiv")

    # the handläggare's worklist now carries the care chain's signals
    hanna.get_by_role("link", name="Arbetslista").click()
    expect(hanna.locator("table.worklist")).to_contain_text(client_name)
    shot(hanna, "arbetslista-handlaggare")

    # -- RSS: the county's numbers with charts, suppressed cells, and the CSV
    seed_county(base, dev_tokens(base))
    stina = _new_page(chromium, base, errors)
    _sign_in(stina, "demo-region-rss", "Uppföljning av SIP – län 01")
    if coverage_available:
        expect(stina.locator(".key-figures")).to_be_visible()
        expect(stina.locator("figure.chart svg[role=img]").first).to_be_visible()
        expect(stina.locator("figure.chart").first).to_contain_text("Stockholms stad")
        expect(stina.locator("body")).to_contain_text("Undertryckt")
        shot(stina, "rss-oversikt")
        with stina.expect_download() as download_info:
            stina.get_by_role("button", name="Ladda ned CSV").click()
        download = download_info.value
        target = artifacts / "tackning.csv"
        download.save_as(str(target))
        csv_text = target.read_text(encoding="utf-8-sig")
        assert csv_text.count("\n") >= 2, csv_text
        assert "coverage" in csv_text or "Stockholms stad" in csv_text, csv_text
        expect(stina.get_by_text("CSV-filen är nedladdad.")).to_be_visible()
        # another breakdown: by gender
        period = stina.get_by_role("form", name="Välj period och indelning")
        period.get_by_label("Indelning").select_option("gender")
        period.get_by_role("button", name="Visa").click()
        expect(stina.locator("figure.chart").first).to_contain_text("Täckning per kön")
        expect(stina.locator("table.report-table")).to_contain_text("Kvinna")
        shot(stina, "rss-per-kon")
    else:
        expect(stina.locator('[data-unavailable="coverage"]')).to_be_visible()
        shot(stina, "rss-rapport-ej-tillganglig")
    # RSS has no worklist and reads no plans
    assert stina.get_by_role("link", name="Arbetslista").count() == 0
    stina.goto(plan_url)
    expect(stina.locator("h1")).to_have_text("Något gick fel")

    assert errors == [], errors
    assert plan_id
    for page in (hanna, rita, sam, stina):
        page.context.close()
    (artifacts / "screenshots.txt").write_text("\n".join(shot.taken) + "\n")


@pytest.mark.browser
def test_keyboard_only_sign_in_and_worklist(chromium: Any, live_server: LiveServer, artifacts: Path) -> None:
    """Tab and Enter alone: skip link, sign in, the worklist, a signal, and the client search."""
    from playwright.sync_api import expect

    errors: list[str] = []
    page = _new_page(chromium, live_server.base_url, errors)
    page.goto("/ui/")
    expect(page.locator("h1")).to_have_text("Logga in i Samplan")

    def focused() -> dict[str, Any]:
        info: dict[str, Any] = page.evaluate(
            """() => { const el = document.activeElement; const s = getComputedStyle(el);
                return {tag: el.tagName, text: (el.textContent || '').trim(), subject: el.dataset.subject || null,
                        href: el.getAttribute('href'), name: el.getAttribute('name'),
                        outline: s.outlineStyle, outlineWidth: parseFloat(s.outlineWidth)}; }"""
        )
        return info

    def tab_to(predicate: Any, limit: int = 80, key: str = "Tab") -> dict[str, Any]:
        for _ in range(limit):
            page.keyboard.press(key)
            info = focused()
            if predicate(info):
                return info
        raise AssertionError("never reached the element with Tab")

    page.keyboard.press("Tab")
    first = focused()
    assert first["text"] == "Hoppa till innehållet"
    assert first["outline"] != "none" and first["outlineWidth"] >= 2  # a visible focus indicator
    info = tab_to(lambda i: i["subject"] == "demo-sthlm-handlaggare")
    assert info["outline"] != "none"
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Arbetslista")
    expect(page.locator("h1")).to_be_focused()

    # After the story the worklist has signals (alone, this test sees an empty one): a signal's
    # link opens the client, and the menu is reached backwards from the page's heading.
    if page.locator("table.worklist").count():
        tab_to(lambda i: (i["href"] or "").startswith("#/clients/"))
        page.keyboard.press("Enter")
        expect(page.locator("h1")).to_contain_text("Klient: ")
        expect(page.locator("h1")).to_be_focused()
    tab_to(lambda i: i["href"] == "#/clients", key="Shift+Tab")
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_have_text("Klienter")
    tab_to(lambda i: i["name"] == "personal_number")
    page.keyboard.type(personnummer("19900101", "017"))
    page.keyboard.press("Enter")
    expect(page.get_by_text("Ingen klient med det numret är känd för din organisation")).to_be_visible()
    page.screenshot(path=str(artifacts / "tangentbord-klientsok.png"), full_page=True)
    assert errors == [], errors
    page.context.close()


@pytest.mark.browser
def test_accessibility_smoke_on_sign_in_and_token_form(
    chromium: Any, live_server: LiveServer, artifacts: Path
) -> None:
    """The sign-in page passes the checks; a bad pasted token gives a Swedish error, not a crash."""
    from playwright.sync_api import expect

    errors: list[str] = []
    page = _new_page(chromium, live_server.base_url, errors)
    page.goto("/ui/")
    expect(page.locator("h1")).to_have_text("Logga in i Samplan")
    assert page.evaluate(A11Y_CHECK) == []
    form = page.get_by_role("form", name="Logga in med åtkomstbiljett")
    form.get_by_role("button", name="Logga in").click()
    expect(form.get_by_role("alert")).to_contain_text("Fyll i de obligatoriska fälten")
    form.get_by_label("Åtkomstbiljett (JWT)").fill("not-a-token")
    form.get_by_role("button", name="Logga in").click()
    expect(form.get_by_role("alert")).to_contain_text("Du är inte inloggad")
    assert page.evaluate(A11Y_CHECK) == []
    # A real token pasted in works, and is kept only for this tab.
    token = dev_tokens(live_server.base_url)["demo-sthlm-lasare"]
    form.get_by_label("Åtkomstbiljett (JWT)").fill(token)
    form.get_by_role("button", name="Logga in").click()
    expect(page.locator("h1")).to_have_text("Välkommen")
    assert page.evaluate(A11Y_CHECK) == []
    page.get_by_role("button", name="Logga ut").click()
    expect(page.locator("h1")).to_have_text("Logga in i Samplan")
    assert page.evaluate("() => sessionStorage.getItem('samplan.token')") is None
    page.screenshot(path=str(artifacts / "inloggning-med-token.png"), full_page=True)
    assert errors == [], errors
    page.context.close()
