"""References in code and docs resolve inside the repository: every `README.md#anchor` or
`docs/<page>.md#anchor` names a heading that exists, and nothing cites a document that is not
in the repository."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = re.compile(r"(?<![\w/.-])((?:\.\./)?(?:README\.md|docs/[\w-]+\.md))#([\w-]+)")
FOREIGN = re.compile(r"SPEC\s*§|SPEC\.md")
TEXT_SUFFIXES = {".py", ".md", ".tf", ".yaml", ".yml", ".toml", ".txt", ".json", ".example", ""}


def _slug(heading: str) -> str:
    """The anchor GitHub gives a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    anchors: set[str] = set()
    in_code = False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            in_code = not in_code
        elif not in_code and line.startswith("#"):
            anchors.add(_slug(line.lstrip("#")))
    return anchors


def _tracked_text_files() -> list[Path]:
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return [ROOT / name for name in listed if Path(name).suffix in TEXT_SUFFIXES and (ROOT / name).is_file()]


def test_the_slug_of_a_heading_is_githubs() -> None:
    assert _slug(" 4. What is written") == "4-what-is-written"
    assert _slug("Who can do what (least privilege)") == "who-can-do-what-least-privilege"


def test_every_reference_to_a_readme_or_docs_section_names_an_existing_heading() -> None:
    missing: list[str] = []
    found = 0
    for path in _tracked_text_files():
        if path == Path(__file__):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            for page, anchor in REFERENCE.findall(line):
                found += 1
                target = (path.parent / page) if page.startswith("..") else ROOT / page
                if not target.is_file() or anchor not in _anchors(target):
                    missing.append(f"{path.relative_to(ROOT)}:{number}: {page}#{anchor}")
    assert found > 20  # the code does point at its documentation
    assert missing == []


def test_nothing_cites_a_specification_outside_the_repository() -> None:
    citing = [
        f"{path.relative_to(ROOT)}:{number}"
        for path in _tracked_text_files()
        if path != Path(__file__)
        for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
        if FOREIGN.search(line)
    ]
    assert citing == []
