"""The product contract is in the repository: every citation points at a section of docs/design.md that exists.

Code, tests and documents cite the design as ``docs/design.md §3.4`` (in Markdown, a link
``[design.md §3.4](design.md#34-callbacks)``). A ``§`` anywhere in the tree means a section of that
file, so each one must name a numbered heading there, and each link to it an anchor it has. The
contract that once lived outside the repository is cited no more: a newcomer who clones the
repository can follow every citation. And the design names only files the tree has, so its layer
map cannot go on naming a module that moved.
"""

from __future__ import annotations

import pathlib
import re
from collections.abc import Iterator

ROOT = pathlib.Path(__file__).resolve().parents[2]
DESIGN = ROOT / "docs" / "design.md"

SKIPPED_DIRS = {"__pycache__", "node_modules", "build", "dist"}
KEPT_HIDDEN_DIRS = {".github", ".ci"}  # the tree's own; the other hidden folders are tools' caches
OUTSIDE = "SP" + "EC"  # spelt apart, so this file does not cite it
OUTSIDE_CITATION = re.compile(rf"(?<![A-Za-z0-9_]){OUTSIDE}(?![A-Za-z0-9_])")
SECTION = re.compile(r"§(\d+(?:\.\d+)?)")
HEADING = re.compile(r"^(#{2,3}) (\d+(?:\.\d+)?)\.? (.*)$")
LINK = re.compile(r"design\.md#([A-Za-z0-9_-]+)")
OWN_LINK = re.compile(r"\]\(#([A-Za-z0-9_-]+)\)")  # inside docs/design.md


def text_files() -> Iterator[tuple[pathlib.Path, str]]:
    """Every text file of the repository (a file that is not UTF-8 is an image or the like)."""
    stack = [ROOT]
    while stack:
        folder = stack.pop()
        for path in sorted(folder.iterdir()):
            if path.is_dir():
                hidden = path.name.startswith(".") and path.name not in KEPT_HIDDEN_DIRS
                if not hidden and path.name not in SKIPPED_DIRS and not path.name.endswith(".egg-info"):
                    stack.append(path)
            elif path.is_file() and not path.is_symlink():
                try:
                    yield path, path.read_text(encoding="utf-8")
                except UnicodeDecodeError:
                    continue


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def sections() -> dict[str, str]:
    """The numbered sections of docs/design.md: number -> anchor."""
    found = {}
    for line in DESIGN.read_text(encoding="utf-8").splitlines():
        match = HEADING.match(line)
        if match:
            found[match[2]] = slug(line.lstrip("#"))
    return found


def places(pattern: re.Pattern[str]) -> Iterator[tuple[str, str]]:
    """(file:line, the match's first group or whole text) for every match in the tree."""
    for path, text in text_files():
        for number, line in enumerate(text.splitlines(), 1):
            for match in pattern.finditer(line):
                yield f"{path.relative_to(ROOT)}:{number}", match[1] if pattern.groups else match[0]


def test_the_design_numbers_its_sections_once_each() -> None:
    numbers = [m[2] for m in map(HEADING.match, DESIGN.read_text(encoding="utf-8").splitlines()) if m]
    assert len(numbers) == len(set(numbers)), f"a section number is used twice: {sorted(numbers)}"
    assert {"2.3", "3.4", "5", "5.3"} <= set(numbers), numbers  # AsyncTask, callbacks, architecture, layer map


def test_nothing_cites_the_contract_that_lived_outside_the_repository() -> None:
    stale = [where for where, _ in places(OUTSIDE_CITATION)]
    assert not stale, f"cite docs/design.md §N.M instead (write the rule there if it is missing): {stale}"


def test_every_section_cited_exists_in_the_design() -> None:
    known = sections()
    cited = list(places(SECTION))
    assert len(cited) > 50, "the tree cites the design in many places; did the scan miss the files?"
    missing = [f"{where} §{number}" for where, number in cited if number not in known]
    assert not missing, f"docs/design.md has no such section: {missing}"


def test_every_file_that_cites_a_section_names_the_design() -> None:
    for path, text in text_files():
        if SECTION.search(text) and path != DESIGN:
            assert "design.md" in text, f"{path.relative_to(ROOT)} cites a § without naming docs/design.md"


def test_every_link_into_the_design_names_an_anchor_it_has() -> None:
    anchors = set(sections().values())
    links = list(places(LINK))
    assert links, "the documents link into the design"
    own = [
        (f"docs/design.md:{n}", a)
        for n, line in enumerate(DESIGN.read_text().splitlines(), 1)
        for a in OWN_LINK.findall(line)
    ]
    assert own, "the design's contents link to its sections"
    wrong = [f"{where} #{anchor}" for where, anchor in links + own if anchor not in anchors]
    assert not wrong, f"docs/design.md has no such heading (anchors: {sorted(anchors)}): {wrong}"


PACKAGE = ROOT / "operator" / "asynctask_operator"
FILE_NAME = re.compile(r"`(\w[\w./-]*\.(?:py|md|yaml|toml)|\w[\w/]*/)`")


def test_every_file_the_design_names_is_in_the_tree() -> None:
    """The layer map and the rest name files as ``core/lifecycle.py`` (under the package, or the
    repository), and after one of them, its siblings by name alone (``draft.py``), until the
    paragraph, list item or table row ends."""
    missing = []
    folder = PACKAGE
    for number, line in enumerate(DESIGN.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.lstrip().startswith(("- ", "|", "#")):
            folder = PACKAGE
        for name in FILE_NAME.findall(line):
            if "/" in name.rstrip("/"):
                found = next((base / name for base in (PACKAGE, ROOT) if (base / name).exists()), None)
                if found is None:
                    missing.append(f"docs/design.md:{number} {name}")
                else:
                    folder = found.parent
            elif not any((base / name).exists() for base in (folder, PACKAGE, ROOT)):
                missing.append(f"docs/design.md:{number} {name}")
    assert not missing, f"named in docs/design.md but not in the tree: {missing}"
