"""The package's shape: stages import one way, and module docstrings name real
entry points. docs/architecture.md describes the same rule in prose."""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "ghafgen"

# Lower numbers are lower layers; a module may import its own layer or lower.
LAYERS = {
    "base": 0,
    "catalog": 1,
    "profile": 2,
    "derive": 3,
    "discover": 3,
    "rules": 4,
    "render": 4,
    "views": 4,
    "verify": 4,
    "toolchain": 5,
    "cli": 6,
}
BASE_MODULES = {
    "__init__",
    "__main__",
    "confined",
    "errors",
    "fileio",
    "findings",
    "units",
    "tools",
    "table",
}
# Same layer, still never imported by each other: the checks and the output
# must each stand on the derived facts alone.
APART = {"rules", "render", "views", "verify", "derive", "discover"}


def stage_of(module: str) -> str:
    """`ghafgen.rules.bpmp` -> `rules`; a top-level module is `base`."""
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[1] in BASE_MODULES):
        return "base"
    return parts[1]


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def imported(tree: ast.AST) -> set[str]:
    """Every ghafgen module a file imports, at any depth (lazy imports too)."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module.startswith("ghafgen"):
                found.add(node.module)
                # `from ghafgen.views import show` imports ghafgen.views.show.
                found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("ghafgen"))
    return {
        m
        for m in found
        if (PACKAGE.parent / m.replace(".", "/")).exists()
        or (PACKAGE.parent / (m.replace(".", "/") + ".py")).exists()
    }


SOURCES = sorted(PACKAGE.rglob("*.py"))


@functools.cache
def parsed(path: Path) -> ast.Module:
    """A source file's syntax tree, parsed once for all the tests here."""
    return ast.parse(path.read_text(encoding="utf-8"))


def test_no_loose_modules_beyond_the_base() -> None:
    loose = {p.stem for p in PACKAGE.glob("*.py")}
    assert loose <= BASE_MODULES, f"move {sorted(loose - BASE_MODULES)} into a stage"
    stages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert stages == set(LAYERS) - {"base"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path) -> None:
    here = module_name(path)
    if here == "ghafgen.__main__":
        return  # `python -m ghafgen` is the command line itself
    stage = stage_of(here)
    wrong = []
    for target in sorted(imported(parsed(path))):
        other = stage_of(target)
        if other == stage or target == "ghafgen":
            continue
        if LAYERS[other] > LAYERS[stage]:
            wrong.append(f"{target} (a higher layer: {other})")
        elif stage in APART and other in APART and LAYERS[other] == LAYERS[stage]:
            wrong.append(f"{target} ({stage} and {other} stay apart)")
    assert not wrong, f"{here} imports {', '.join(wrong)}"


def test_the_layer_test_sees_a_wrong_import(tmp_path: Path) -> None:
    tree = ast.parse("from ghafgen.render.plan import plan\nimport ghafgen.cli\n")
    assert {"ghafgen.render.plan", "ghafgen.cli"} <= imported(tree)
    assert LAYERS[stage_of("ghafgen.cli")] > LAYERS[stage_of("ghafgen.profile.parse")]


ENTRY = re.compile(r"Entry points?:(.*?)(?:\n\n|\Z)", re.S)
NAMED = re.compile(r"`(?:[\w.]*\.)?(\w+)\(")


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_entry_point_lines_name_real_code(path: Path) -> None:
    tree = parsed(path)
    doc = ast.get_docstring(tree) or ""
    match = ENTRY.search(doc)
    if not match:
        return
    defined = {
        n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)
    }
    # A package's __init__ re-exports; a name it imports counts.
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            defined.update(a.asname or a.name for a in node.names)
    if path.name == "__init__.py":
        for sub in path.parent.glob("*.py"):
            defined.update(
                n.name
                for n in parsed(sub).body
                if isinstance(n, ast.FunctionDef | ast.ClassDef)
            )
    named = set(NAMED.findall(match.group(1)))
    assert named, f"{path}: an 'Entry point:' line that names no callable"
    assert named <= defined, f"{path}: names {sorted(named - defined)}, not in the code"


CALL = re.compile(r"`(?:([\w.]*)\.)?(\w+)\(([^`]*)\)`")


def _functions(path: Path) -> dict[str, ast.FunctionDef]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.name: n for n in tree.body if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_entry_point_arguments_are_the_parameters(path: Path) -> None:
    """`plan(profile, board, name)` in a docstring names parameters `plan` has."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    match = ENTRY.search(doc)
    if not match:
        return
    wrong = []
    for qualifier, name, args in CALL.findall(match.group(1)):
        # The function itself: in this module, or in the sibling module a
        # qualifier names (`show.render_text`), or, for a package, any of its modules.
        if qualifier:
            where = [path.parent / f"{qualifier.split('.')[-1]}.py"]
        elif path.name == "__init__.py":
            where = sorted(path.parent.glob("*.py"))
        else:
            where = [path]
        fn = next(
            (fs[name] for p in where if p.exists() and name in (fs := _functions(p))),
            None,
        )
        if fn is None:
            continue  # a class, or a name imported from elsewhere
        params = {
            a.arg for a in fn.args.posonlyargs + fn.args.args + fn.args.kwonlyargs
        }
        for arg in (a.strip() for a in args.split(",")):
            key = arg.split("=")[0].strip()
            if key in ("", "...") or not key.isidentifier():
                continue
            if key not in params:
                wrong.append(f"{name}({arg}): {name} has {sorted(params)}")
    assert not wrong, f"{path}: " + "; ".join(wrong)
