"""The architecture rules of docs/DEVELOPING.md, checked (issue 14, points 1, 3 and 4).

No import cycle; the import-linter contracts of pyproject.toml kept; family folders independent of each
other and reached by the upper layers only through the registry; every family folder shaped alike; no
module over 600 lines; no block of six identical lines in two places; no hook found by hasattr/getattr.
Blocks of the same shape under other names are left to ``duplicates`` at review (docs/DEVELOPING.md).
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

import causalcli.designs as designs
from causalcli.designs.base import Design

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "causalcli"
MAX_LINES = 600
BLOCK = 6  # lines: a block this long may appear only once
FAMILY_FILES = ("__init__.py", "spec.py", "design.py", "plots.py")
# what the layers above the designs may import of `causalcli.designs` (the registry and the interface)
DESIGN_INTERFACE = {"causalcli.designs", "causalcli.designs.base", "causalcli.designs.family"}
UPPER_LAYERS = ("causalcli.cli", "causalcli.api", "causalcli.study", "causalcli.starter", "causalcli.result",
                "causalcli.render")


def modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def family_folders() -> list[Path]:
    return sorted(p.parent for p in (PACKAGE / "designs").glob("*/__init__.py"))


@pytest.fixture(scope="module")
def graph():
    import grimp

    return grimp.build_graph("causalcli", exclude_type_checking_imports=True)


def test_no_import_cycle(graph):
    """For every direct import m -> i, nothing reachable from i leads back to m."""
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            if graph.chain_exists(importer=imported, imported=importer):
                back = graph.find_shortest_chain(importer=imported, imported=importer)
                cycles.append(f"{importer} -> {' -> '.join(back)}")
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_import_linter_contracts_are_kept():
    """The layers, family independence and interface-only contracts of pyproject.toml (as `make test`)."""
    lint = Path(sys.executable).with_name("lint-imports")
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]


def test_every_family_folder_is_independent_and_private(graph):
    """What pyproject lists for six families, for every folder: a family added later is covered too."""
    names = [f"causalcli.designs.{p.name}" for p in family_folders()]
    crossing = [f"{a} -> {b}" for a in names for b in names
                if a != b and graph.chain_exists(importer=a, imported=b, as_packages=True)]
    assert not crossing, "families import each other (what they share belongs in a shared layer):\n" + "\n".join(
        crossing)
    reaching = []
    for upper in UPPER_LAYERS:
        for module in graph.find_matching_modules(f"{upper}") | graph.find_matching_modules(f"{upper}.**"):
            for imported in graph.find_modules_directly_imported_by(module):
                if imported.startswith("causalcli.designs") and imported not in DESIGN_INTERFACE:
                    reaching.append(f"{module} -> {imported}")
    assert not reaching, "use the registry (causalcli.designs) or causalcli.designs.base:\n" + "\n".join(reaching)


def test_family_folders_are_shaped_alike():
    """Each family folder: __init__ (FAMILY), spec.py (the `design:` model), design.py, plots.py."""
    problems = []
    registered = {f.design.split(":")[0].rsplit(".", 1)[0]: f for f in designs.families().values()
                  if isinstance(f.design, str) and f.design.startswith("causalcli.designs.")}
    for folder in family_folders():
        missing = [f for f in FAMILY_FILES if not (folder / f).is_file()]
        if missing:
            problems.append(f"{folder.relative_to(ROOT)}: no {', '.join(missing)}")
        family = registered.get(f"causalcli.designs.{folder.name}")
        if family is None:
            problems.append(f"{folder.relative_to(ROOT)}: __init__ declares no FAMILY with its design in the folder")
            continue
        prefix = f"causalcli.designs.{folder.name}."
        if family.spec_model.__module__ != prefix + "spec" or family.plots != f"{prefix}plots:PLOTS":
            problems.append(f"{folder.name}: FAMILY's spec must come from spec.py and its plots be plots:PLOTS")
        if not family.design.startswith(prefix + "design:"):
            problems.append(f"{folder.name}: FAMILY.design must be design.py's class")
    assert not problems, "\n".join(problems)


def test_each_design_declares_the_interface():
    """The Design subclass of each family: its name is the family's, and the declared facts are set."""
    problems = []
    for name, family in designs.families().items():
        if not family.built:
            continue
        design = designs.get_design(name)
        if not isinstance(design, Design):
            problems.append(f"{name}: {type(design).__name__} is not a causalcli.designs.base.Design")
            continue
        if design.name != name:
            problems.append(f"{name}: its Design says name = {design.name!r}")
        for fact in ("estimators", "estimands", "inference"):
            if not getattr(design, fact, None):
                problems.append(f"{name}: {type(design).__name__}.{fact} is not declared")
        if not (ROOT / family.docs).is_file():
            problems.append(f"{name}: no user page {family.docs}")
    assert not problems, "\n".join(problems)


def test_no_hook_found_by_hasattr_or_getattr():
    """Hooks are declared on Design and called directly: no hasattr/getattr naming one, anywhere."""
    hooks = {n for n in dir(Design) if not n.startswith("__")} | set(Design.__annotations__)
    found = []
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("hasattr", "getattr") and len(node.args) >= 2
                    and isinstance(node.args[1], ast.Constant) and node.args[1].value in hooks):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {node.func.id}(..., {node.args[1].value!r})")
    assert not found, "\n".join(found)


def test_no_module_longer_than_600_lines():
    long = [f"{p.relative_to(ROOT)}: {n} lines" for p in modules()
            if (n := len(p.read_text().splitlines())) > MAX_LINES]
    assert not long, f"modules over {MAX_LINES} lines (split by concern):\n" + "\n".join(long)


def _code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, text with whitespace normalised), without blank, comment-only, import and
    lone-punctuation lines (``)``, ``],``), as ``duplicates`` reads them."""
    text = path.read_text()
    imports = set()
    for node in ast.walk(ast.parse(text, str(path))):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            imports.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        normal = re.sub(r"\s+", " ", line).strip()
        if re.search(r"\w", normal) and not normal.startswith("#") and number not in imports:
            out.append((number, normal))
    return out


def test_no_block_of_six_identical_lines_repeated():
    """Six consecutive code lines (whitespace normalised) occur in one place only, across causalcli/."""
    files = {path.relative_to(ROOT): _code_lines(path) for path in modules()}
    places = defaultdict(list)  # window of BLOCK lines -> [(file, index of its first line)]
    for name, lines in files.items():
        for i in range(len(lines) - BLOCK + 1):
            places[tuple(text for _, text in lines[i:i + BLOCK])].append((name, i))
    findings = []
    for name, lines in files.items():
        # windows first seen here that recur elsewhere, merged into runs: a 9-line copy is one finding
        firsts = [i for i in range(len(lines) - BLOCK + 1)
                  if (where := places[tuple(text for _, text in lines[i:i + BLOCK])])[0] == (name, i)
                  and len(where) > 1]
        for run in _runs(firsts):
            window = tuple(text for _, text in lines[run[0]:run[0] + BLOCK])
            others = ", ".join(f"{other}:{files[other][j][0]}" for other, j in places[window][1:])
            findings.append(f"{name}:{lines[run[0]][0]}-{lines[run[-1] + BLOCK - 1][0]} also at {others}")
    assert not findings, (f"blocks of {BLOCK} or more identical lines (blank, comment and import lines "
                          "aside); keep one, in the layer both callers share:\n" + "\n".join(findings))


def _runs(indices: list[int]) -> list[list[int]]:
    """Consecutive integers grouped: [1, 2, 3, 7, 8] -> [[1, 2, 3], [7, 8]]."""
    runs: list[list[int]] = []
    for i in indices:
        if runs and i == runs[-1][-1] + 1:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs
