"""The cashier page as files: served locally with the security headers, every control has a
stable ``data-testid`` (the browser tests drive it by them), and every text key the page uses
exists in both languages' tables."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient

from shouyin.web.app import STATIC_DIR, create_app
from tests.web import make_runtime

PAGE = STATIC_DIR / "cashier.html"
SCRIPTS = sorted((STATIC_DIR / "js").glob("*.js"))


class Controls(HTMLParser):
    """Collects the page's controls and text keys."""

    def __init__(self) -> None:
        super().__init__()
        self.untagged: list[str] = []
        self.testids: list[str] = []
        self.keys: set[str] = set()
        self.external: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if "data-testid" in found:
            self.testids.append(str(found["data-testid"]))
        elif tag in ("button", "input", "select", "dialog"):
            self.untagged.append(self.get_starttag_text() or tag)
        for name in ("data-i18n", "data-i18n-placeholder", "data-i18n-title"):
            if found.get(name):
                self.keys.add(str(found[name]))
        for name in ("src", "href"):
            value = found.get(name) or ""
            if value.startswith(("http:", "https:", "//")):
                self.external.append(value)


@pytest.fixture(scope="module")
def controls() -> Controls:
    parser = Controls()
    parser.feed(PAGE.read_text(encoding="utf-8"))
    return parser


def test_every_control_has_a_unique_test_id(controls: Controls) -> None:
    assert controls.untagged == []
    assert len(controls.testids) == len(set(controls.testids))
    for needed in ("scan-input", "pay-button", "tender-card", "tender-qr", "approval-submit"):
        assert needed in controls.testids


def test_nothing_is_loaded_from_another_site(controls: Controls) -> None:
    assert controls.external == []
    for script in SCRIPTS:
        assert not re.search(r"""(from|import)\s*\(?\s*["']https?:""", script.read_text())


def test_every_text_key_exists_in_chinese_and_english(controls: Controls) -> None:
    used = set(controls.keys)
    for script in SCRIPTS:
        used |= set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']""", script.read_text()))
    used |= {f"terminal.{state}" for state in ("none", "recovering", "ready", "offline")}
    for lang in ("zh", "en"):
        table = json.loads((STATIC_DIR / "i18n" / f"{lang}.json").read_text(encoding="utf-8"))
        assert sorted(used - set(table)) == [], lang


@pytest.fixture
def client(lane_url: str) -> Iterator[TestClient]:
    with TestClient(create_app(make_runtime(lane_url))) as client:
        yield client


def test_the_page_is_served_with_a_strict_content_security_policy(client: TestClient) -> None:
    page = client.get("/", follow_redirects=True)
    assert page.status_code == 200 and "收银" in page.text
    policy = page.headers["content-security-policy"]
    assert "default-src 'self'" in policy and "frame-ancestors 'none'" in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    for asset in ["/static/js/cashier.js", "/static/cashier.css", "/static/i18n/en.json"]:
        assert client.get(asset).status_code == 200, asset
    assert client.get("/api/session").headers["cache-control"] == "no-store"


def test_the_content_security_policy_allows_no_eval_and_no_inline_script(
    lane_url: str,
) -> None:
    with TestClient(create_app(make_runtime(lane_url))) as client:
        policy = client.get("/").headers["content-security-policy"]
    script = next(p for p in policy.split(";") if p.strip().startswith("script-src"))
    assert script.split() == ["script-src", "'self'"]
