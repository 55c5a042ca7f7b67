"""Every relative link in README.md and docs/ reaches its file, and every #anchor a heading of that file, as GitHub
renders it; and the README stays within the house style's 250 lines. A renamed heading or moved file fails here."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\((?P<target>[^)\s#]*)(?:#(?P<anchor>[^)\s]+))?\)")
HEADING = re.compile(r"^#{1,6}\s+(?P<title>.+?)\s*#*\s*$")


def slug(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped (letters, digits, _ and - kept), spaces to -."""
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown file's headings outside code fences; a repeated one gets -1, -2, ... as on GitHub."""
    found, seen, fenced = set(), {}, False
    for line in text.split("\n"):
        fenced ^= line.startswith("```")
        heading = None if fenced else HEADING.match(line)
        if heading:
            base = slug(heading["title"])
            found.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line: target` for each relative link of `path` whose file or anchor is missing."""
    text, broken = path.read_text(), []
    for link in LINK.finditer(text):
        target, anchor = link["target"], link["anchor"]
        if re.match(r"^[a-z]+:", target):  # http:, https:, mailto: are not checked (no network here)
            continue
        to = (path.parent / target).resolve() if target else path
        if not to.exists() or (anchor and to.suffix == ".md" and anchor not in anchors(to.read_text())):
            line = text.count("\n", 0, link.start()) + 1
            broken.append(f"{path.relative_to(root)}:{line}: {link.group(0)[2:-1]}")
    return broken


def test_slugs_and_anchors_follow_github():
    assert slug("The powered experiment: SVAMP P-CoT (`make reproduce-svamp`)") == (
        "the-powered-experiment-svamp-p-cot-make-reproduce-svamp"
    )
    assert slug("What the grids find") == "what-the-grids-find"
    text = "# A\n## Notes\n```bash\n# not a heading\n```\n## Notes\n"
    assert anchors(text) == {"a", "notes", "notes-1"}


def test_a_broken_link_is_found(tmp_path):
    (tmp_path / "b.md").write_text("## Here\n")
    page = tmp_path / "a.md"
    page.write_text("[ok](b.md#here) [gone](c.md) [bad](b.md#there) [self](#top)\n# Top\n")
    assert broken_links(page, tmp_path) == ["a.md:1: c.md", "a.md:1: b.md#there"]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_readme_is_at_most_250_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
