"""The project's own reference (README.md, docs/): its links land on real headings, every test
it names as the check of an example exists, the demo ids it prints are the demo's, and
docs/spec-map.txt replaces every reference to the external contract in the code."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import pytest

from slotmill.demo import demo_id

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SPEC_MAP = ROOT / "docs" / "spec-map.txt"
# Where code comments may cite the contract: every layer, the glue, the benchmark, the tests.
CODE_DIRS = ("api", "jobs", "materializer", "sql", "slotmill", "bench", "tests")
SPEC_WORD = re.compile(r"\bSPEC\b")


def slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def anchors(path: Path) -> set[str]:
    seen: Counter[str] = Counter()
    out: set[str] = set()
    in_code = False
    for line in path.read_text().splitlines():
        if line.startswith("```"):
            in_code = not in_code
        m = None if in_code else re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            base = slug(m.group(1))
            out.add(base if not seen[base] else f"{base}-{seen[base]}")
            seen[base] += 1
    return out


def spec_map() -> list[tuple[str, str]]:
    out = []
    for line in SPEC_MAP.read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            src, sep, dst = line.partition(" -> ")
            assert sep, f"spec-map.txt: not FROM -> TO: {line!r}"
            out.append((src, dst))
    return out


def code_files() -> list[Path]:
    files = [ROOT / "BENCHMARKS.md"]
    for top in CODE_DIRS:
        for path in (ROOT / top).rglob("*"):
            # slotmill/api etc. are symlinks to the layer folders: scanned once, as themselves
            if path.suffix in (".py", ".sql") and not any(p.is_symlink() for p in path.relative_to(ROOT).parents):
                files.append(path)
    return [f for f in files if f.name != Path(__file__).name and not (ROOT / f).is_symlink()]


def check_target(target: str, base: Path) -> str | None:
    """None if ``path#anchor`` (relative to ``base``'s folder) names an existing heading."""
    path_part, _, anchor = target.partition("#")
    path = (base.parent / path_part).resolve() if path_part else base
    if not path.is_file():
        return f"{target}: no file {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}"
    if anchor and path.suffix == ".md" and anchor not in anchors(path):
        return f"{target}: no heading #{anchor} in {path.relative_to(ROOT)}"
    return None


def test_spec_map_replaces_every_spec_reference_in_the_code() -> None:
    mapping = spec_map()
    left: list[str] = []
    used: set[str] = set()
    for path in code_files():
        text = path.read_text()
        for src, dst in mapping:
            if src in text:
                used.add(src)
                text = text.replace(src, dst)
        for n, line in enumerate(text.splitlines(), 1):
            if SPEC_WORD.search(line):
                left.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not left, "add to docs/spec-map.txt:\n" + "\n".join(left)
    assert used, "the map replaced nothing: is it still needed?"


def test_spec_map_targets_exist() -> None:
    problems = []
    for _src, dst in spec_map():
        for target in re.findall(r"(?:README\.md|docs/[\w.-]+\.md)#[\w-]+", dst):
            problems.append(check_target(target, ROOT / "README.md"))
    assert [p for p in problems if p] == []
    assert problems, "no targets found"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_links_land_on_real_files_and_headings(doc: Path) -> None:
    text = re.sub(r"```.*?```", "", doc.read_text(), flags=re.DOTALL)
    problems = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s) and mailto links
        problems.append(check_target(target, doc))
    assert [p for p in problems if p] == []


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_test_named_in_the_docs_exists(doc: Path) -> None:
    missing = []
    for file, name in re.findall(r"(tests/(?:\w+/)*test_\w+\.py)::(test_\w+)", doc.read_text()):
        path = ROOT / file
        if not path.is_file() or not re.search(rf"^(?:async )?def {name}\(", path.read_text(), re.MULTILINE):
            missing.append(f"{file}::{name}")
    assert missing == []


def test_rules_name_their_tests() -> None:
    rules = (ROOT / "docs" / "rules.md").read_text()
    assert len(set(re.findall(r"tests/(?:\w+/)*test_\w+\.py::test_\w+", rules))) >= 60


@pytest.mark.parametrize(
    ("kind", "name"),
    [
        ("service", "Haircut"),
        ("service", "Colour"),
        ("service", "Beard trim"),
        ("service", "Consultation"),
        ("staff", "Ava Clarke"),
        ("staff", "Ben Okafor"),
        ("staff", "Chloé Martin"),
        ("staff", "Diego Reyes"),
        ("staff", "Emi Tanaka"),
    ],
)
def test_readme_prints_the_demo_ids(kind: str, name: str) -> None:
    readme = (ROOT / "README.md").read_text()
    line = next((x for x in readme.splitlines() if name in x and x.strip().startswith("|")), None)
    assert line is not None, f"README's demo table has no row for {name}"
    assert str(demo_id(kind, name)) in line
