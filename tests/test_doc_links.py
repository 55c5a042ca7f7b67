"""Every inline relative link `[text](path#anchor)` in README.md and docs/ reaches its file inside the repository,
and every #anchor a heading of that file, as GitHub renders it; and the README stays within the house style's 250
lines. A renamed heading or a moved file fails here. Links and headings inside code (fenced blocks, `spans`) are not
read; reference-style links, setext headings and markup inside a heading are not handled (the docs use none)."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
FENCE = re.compile(r"^ {0,3}(?P<mark>`{3,}|~{3,})")
LINK = re.compile(r"\]\(<?(?P<target>[^)\s#>]*)(?:#(?P<anchor>[^)\s>]+))?>?(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^ {0,3}#{1,6}\s+(?P<title>.+?)\s*#*\s*$")


def outside_fences(text: str):
    """(line number, line) for each line outside fenced code blocks. A fence closes only on the same character, at
    least as long as the one that opened it (CommonMark)."""
    fence = None
    for number, line in enumerate(text.split("\n"), 1):
        mark = FENCE.match(line)
        if mark and fence is None:
            fence = mark["mark"]
        elif mark and mark["mark"][0] == fence[0] and len(mark["mark"]) >= len(fence):
            fence = None
        elif fence is None:
            yield number, line


def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) outside fenced code blocks, with inline code spans blanked out."""
    return [(number, re.sub(r"(`+).+?\1", "``", line)) for number, line in outside_fences(text)]


def slug(title: str) -> str:
    """GitHub's heading anchor: lower case, punctuation dropped (letters, digits, _ and - kept), spaces to -."""
    return re.sub(r"[^\w\- ]", "", title.replace("`", "").strip().lower()).replace(" ", "-")


def anchors(text: str) -> set[str]:
    """The anchors of a Markdown file's headings; a repeated one gets -1, -2, ... as on GitHub."""
    found, seen = set(), {}
    for _, line in outside_fences(text):  # headings keep their code spans: GitHub slugs the span's text
        heading = HEADING.match(line)
        if heading:
            base = slug(heading["title"])
            found.add(base if base not in seen else f"{base}-{seen[base]}")
            seen[base] = seen.get(base, 0) + 1
    return found


def broken_links(path: Path, root: Path = ROOT) -> list[str]:
    """`file:line: target` for each inline relative link of `path` whose file or anchor is missing, or that leaves
    the repository."""
    broken = []
    for number, line in prose_lines(path.read_text()):
        for link in LINK.finditer(line):
            target, anchor = unquote(link["target"]), link["anchor"] and unquote(link["anchor"])
            if re.match(r"^[a-z][a-z0-9+.-]*:", target, re.I):  # http:, mailto: ... are not checked (no network)
                continue
            to = (root / target.lstrip("/") if target.startswith("/") else path.parent / target) if target else path
            to = to.resolve()
            inside = to == root.resolve() or root.resolve() in to.parents
            missing = not to.exists() or (anchor and to.suffix == ".md" and anchor not in anchors(to.read_text()))
            if missing or not inside:
                broken.append(f"{path.relative_to(root)}:{number}: {target or path.name}#{anchor or ''}".rstrip("#"))
    return broken


def test_slugs_and_anchors_follow_github():
    assert slug("The powered experiment: SVAMP P-CoT (`make reproduce-svamp`)") == (
        "the-powered-experiment-svamp-p-cot-make-reproduce-svamp"
    )
    assert slug("What the grids find") == "what-the-grids-find"
    text = "# A\n## Notes\n```bash\n# not a heading\n```\n## Notes\n````md\n```\n# nor this\n```\n````\n## Tail ##\n"
    assert anchors(text) == {"a", "notes", "notes-1", "tail"}


def test_a_broken_link_is_found(tmp_path):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (tmp_path / "outside.md").write_text("# Out\n")
    (repo / "docs" / "b.md").write_text("## Here\n")
    page = repo / "a.md"
    page.write_text(
        '[ok](docs/b.md#here) [gone](c.md) [bad](docs/b.md#there) [self](#top) [titled](<docs/b.md> "t")\n'
        "[out](../outside.md) `[code](nowhere.md)` [web](HTTPS://example.org/x.md) [nope](#end)\n"
        "```\n[fenced](nowhere.md)\n```\n# Top\n"
    )
    assert broken_links(page, repo) == [
        "a.md:1: c.md",
        "a.md:1: docs/b.md#there",
        "a.md:2: ../outside.md",
        "a.md:2: a.md#end",
    ]


@pytest.mark.parametrize("path", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(path):
    assert broken_links(path) == []


def test_the_readme_is_at_most_250_lines():
    assert len((ROOT / "README.md").read_text().splitlines()) <= 250
