"""The documentation site builds strictly, offline, with no broken internal link, and documents
every public name; the relative links of docs/*.md and README.md resolve."""

from __future__ import annotations

import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest

import threadline

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.docs

MD_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
REMOTE = ("http://", "https://", "mailto:", "//")


class _Links(HTMLParser):
    """The ids a page defines, its links, and the assets it loads."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []
        self.assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        if "id" in values:
            self.ids.add(values["id"])
        if tag == "a" and "href" in values:
            self.links.append(values["href"])
        if tag in ("script", "img") and "src" in values:
            self.assets.append(values["src"])
        if tag == "link" and "href" in values:
            self.assets.append(values["href"])


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> dict[Path, _Links]:
    out = tmp_path_factory.mktemp("site")
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    pages: dict[Path, _Links] = {}
    for page in out.rglob("*.html"):
        parser = _Links()
        parser.feed(page.read_text(encoding="utf-8"))
        pages[page] = parser
    return pages


def test_every_internal_link_of_the_site_resolves(site: dict[Path, _Links]) -> None:
    broken = []
    for page, parsed in site.items():
        if page.name == "404.html":  # served from any folder, so its links are absolute
            continue
        for href in parsed.links:
            if href.startswith(REMOTE) or href.startswith("javascript:"):
                continue
            parts = urlsplit(href)
            target = page if not parts.path else (page.parent / unquote(parts.path)).resolve()
            if target.is_dir():
                target = target / "index.html"
            if target not in site and not target.exists():
                broken.append(f"{page.name}: {href}")
            elif parts.fragment and target in site and parts.fragment not in site[target].ids:
                broken.append(f"{page.name}: {href} (no such anchor)")
    assert broken == []


def test_the_site_loads_nothing_from_the_network(site: dict[Path, _Links]) -> None:
    remote = {
        asset for parsed in site.values() for asset in parsed.assets if asset.startswith(REMOTE)
    }
    assert remote == set()


def test_every_public_name_is_documented(site: dict[Path, _Links]) -> None:
    documented = {
        anchor.rsplit(".", 1)[-1]
        for page, parsed in site.items()
        if page.parent.name == "api"
        for anchor in parsed.ids
        if anchor.startswith("threadline.")
    }
    # AsyncOpenAI is the openai package's class, re-exported for convenience
    public = set(threadline.__all__) - {"AsyncOpenAI", "__version__"}
    missing = sorted(public - documented)
    assert missing == [], f"add their modules to a page in docs/api/ (`::: module`): {missing}"


@pytest.mark.parametrize(
    "document", [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))], ids=lambda p: p.name
)
def test_relative_links_in_the_markdown_resolve(document: Path) -> None:
    text = re.sub(r"```.*?```", "", document.read_text(encoding="utf-8"), flags=re.S)
    broken = []
    for href in MD_LINK.findall(text):
        if href.startswith(REMOTE) or href.startswith("#"):
            continue
        path = unquote(urlsplit(href).path)
        if not (document.parent / path).exists():
            broken.append(href)
    assert broken == []


def test_the_readme_says_how_to_build_the_site() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "scripts/docs.sh" in readme and "site/index.html" in readme
