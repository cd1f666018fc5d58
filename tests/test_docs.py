"""The README stays a front page whose links work on GitHub.

The docs site itself is checked by `mkdocs build --strict` in `make test` (broken links and
anchors, pages missing from nav); mkdocs does not read README.md, so its links are checked here.
"""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
LINK = re.compile(r"\]\(([^)\s]+)\)")


def readme_links() -> list[str]:
    return LINK.findall(README.read_text(encoding="utf-8"))


def test_readme_is_short() -> None:
    lines = README.read_text(encoding="utf-8").count("\n")
    assert lines <= 200, f"README.md has {lines} lines; move sections into docs/ (limit 200)"


def test_readme_relative_links_point_at_files() -> None:
    relative = [link for link in readme_links() if "://" not in link and not link.startswith("#")]
    assert relative, "the README links to no docs page"
    missing = [link for link in relative if not (ROOT / link.split("#")[0]).is_file()]
    assert not missing, f"README.md links to files that do not exist: {missing}"


def test_readme_links_every_docs_page() -> None:
    linked = {link.split("#")[0] for link in readme_links()}
    pages = {f"docs/{page.name}" for page in (ROOT / "docs").glob("*.md")}
    assert pages <= linked, f"docs pages the README does not link: {sorted(pages - linked)}"
