"""The package's shape: stages import one way, and module docstrings name real
entry points. docs/architecture.md describes the same rule in prose."""

from __future__ import annotations

import ast
import functools
import importlib.util
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
    "records",
    "fileio",
    "findings",
    "units",
    "tools",
    "table",
}
# Same layer, still never imported by each other: the checks and the output
# must each stand on the derived facts alone.
APART = {"rules", "render", "views", "verify", "derive", "discover"}
# Lower to higher is allowed except these (stage -> stage it must not import:
# why). docs/architecture.md: cli is the only layer that calls both rules and
# render; toolchain runs the real tools on rendered output and reads render's
# manifest, so it never imports rules.
NEVER = {("toolchain", "rules"): "only cli calls both rules and render"}
# Calls that import the module their first argument names.
IMPORT_CALLS = {
    "importlib.import_module",
    "import_module",
    "__import__",
    "builtins.__import__",
}


def stage_of(module: str) -> str:
    """`ghafgen.rules.bpmp` -> `rules`; a top-level module is `base`."""
    parts = module.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[1] in BASE_MODULES):
        return "base"
    return parts[1]


def module_name(path: Path, package: Path = PACKAGE) -> str:
    rel = path.relative_to(package.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__" and len(parts) > 1:
        parts.pop()
    return ".".join(parts)


def resolve(name: str, level: int, here: str, is_package: bool) -> str:
    """The absolute name of `from <level dots><name> import ...` written in
    module `here`, as the import system resolves it (importlib.util.resolve_name).

    Raises:
        ImportError: the dots climb above the top package.
    """
    if level == 0:
        return name
    package = here if is_package else here.rpartition(".")[0]
    return importlib.util.resolve_name("." * level + name, package)


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _literal(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return None


def imported(
    tree: ast.AST,
    here: str = "ghafgen",
    is_package: bool = False,
    package: Path = PACKAGE,
) -> tuple[set[str], list[str]]:
    """(every module of `package` the file imports, imports that cannot be read).

    At any depth (lazy imports too): `import`, `from` with relative imports
    resolved against `here`'s package, and `importlib.import_module` /
    `__import__` calls, whose name must be a literal to be checked.
    """
    found: set[str] = set()
    unreadable: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            try:
                module = resolve(node.module or "", node.level, here, is_package)
            except ImportError as e:
                unreadable.append(f"line {node.lineno}: {e}")
                continue
            found.add(module)
            # `from ghafgen.views import show` imports ghafgen.views.show.
            found.update(f"{module}.{a.name}".lstrip(".") for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.Call) and _dotted(node.func) in IMPORT_CALLS:
            name = _literal(node.args[0]) if node.args else None
            anchor = next(
                (k.value for k in node.keywords if k.arg == "package"),
                node.args[1]
                if len(node.args) > 1 and "import_module" in _dotted(node.func)
                else None,
            )
            if name is None:
                unreadable.append(
                    f"line {node.lineno}: a dynamic import of a computed name"
                )
            elif name.startswith("."):
                base = _literal(anchor)
                if base is None:
                    unreadable.append(
                        f"line {node.lineno}: {name!r} without a literal package"
                    )
                else:
                    found.add(importlib.util.resolve_name(name, base))
            else:
                found.add(name)
    top = package.name
    mine = {
        m
        for m in found
        if (m == top or m.startswith(top + "."))
        and (
            (package.parent / m.replace(".", "/")).exists()
            or (package.parent / (m.replace(".", "/") + ".py")).exists()
        )
    }
    return mine, unreadable


def wrong_imports(path: Path, package: Path = PACKAGE) -> list[str]:
    """What the file at `path` imports against the import rule, with why."""
    here = module_name(path, package)
    if here == f"{package.name}.__main__":
        return []  # `python -m ghafgen` is the command line itself
    stage = stage_of(here)
    mine, wrong = imported(parsed(path), here, path.name == "__init__.py", package)
    for target in sorted(mine):
        other = stage_of(target)
        if other == stage or target == package.name:
            continue
        if LAYERS[other] > LAYERS[stage]:
            wrong.append(f"{target} (a higher layer: {other})")
        elif stage in APART and other in APART and LAYERS[other] == LAYERS[stage]:
            wrong.append(f"{target} ({stage} and {other} stay apart)")
        elif (stage, other) in NEVER:
            wrong.append(
                f"{target} ({stage} never imports {other}: {NEVER[stage, other]})"
            )
    return wrong


SOURCES = sorted(PACKAGE.rglob("*.py"))


def parsed(path: Path) -> ast.Module:
    """A source file's syntax tree, each text parsed once for all the tests here
    (the planted packages below copy the real catalog modules)."""
    return _parse(path.read_text(encoding="utf-8"))


@functools.cache
def _parse(text: str) -> ast.Module:
    return ast.parse(text)


def test_no_loose_modules_beyond_the_base() -> None:
    loose = {p.stem for p in PACKAGE.glob("*.py")}
    assert loose <= BASE_MODULES, f"move {sorted(loose - BASE_MODULES)} into a stage"
    stages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").exists()}
    assert stages == set(LAYERS) - {"base"}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_flow_one_way(path: Path) -> None:
    wrong = wrong_imports(path)
    assert not wrong, f"{module_name(path)} imports {', '.join(wrong)}"


def _package(root: Path, files: dict[str, str]) -> Path:
    """A package tree named ghafgen under `root` with the stages and `files`."""
    package = root / "ghafgen"
    for stage in LAYERS:
        if stage != "base":
            (package / stage).mkdir(parents=True, exist_ok=True)
            (package / stage / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    for name, text in files.items():
        (package / name).write_text(text)
    return package


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        ("from ghafgen.cli import app\n", "ghafgen.cli (a higher layer: cli)"),
        ("from ..cli import app\n", "ghafgen.cli (a higher layer: cli)"),
        ("from .. import cli\n", "ghafgen.cli (a higher layer: cli)"),
        ("def f():\n    from ..cli.app import run\n", "ghafgen.cli.app (a higher layer: cli)"),
        ("import importlib\nimportlib.import_module('ghafgen.cli.app')\n", "ghafgen.cli.app"),
        ("from importlib import import_module\nimport_module('..cli', 'ghafgen.render')\n",
         "ghafgen.cli (a higher layer: cli)"),
        ("__import__('ghafgen.cli.app')\n", "ghafgen.cli.app (a higher layer: cli)"),
        ("import importlib\nname = 'cli'\nimportlib.import_module(name)\n",
         "a dynamic import of a computed name"),
        ("from ....x import y\n", "line 1:"),
    ],
)  # fmt: skip
def test_the_layer_test_sees_a_planted_wrong_import(
    tmp_path: Path, planted: str, expected: str
) -> None:
    """A render module of a small synthetic package imports cli as each
    spelling writes it; the checker resolves it and names it."""
    package = _package(tmp_path, {"cli/app.py": "", "render/out.py": planted})
    wrong = wrong_imports(package / "render" / "out.py", package)
    assert any(expected in w for w in wrong), wrong


def test_toolchain_importing_rules_is_caught(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {
            "rules/engine.py": "",
            "render/output.py": "",
            "toolchain/ok.py": "from ..render.output import x\n",
            "toolchain/bad.py": "from ghafgen.rules import engine\n",
            "cli/both.py": "from ..rules import engine\nfrom ..render import output\n",
        },
    )
    assert wrong_imports(package / "toolchain" / "ok.py", package) == []
    assert wrong_imports(package / "cli" / "both.py", package) == []
    assert wrong_imports(package / "toolchain" / "bad.py", package) == [
        "ghafgen.rules (toolchain never imports rules: only cli calls both rules and render)",
        "ghafgen.rules.engine (toolchain never imports rules: only cli calls both rules "
        "and render)",
    ]


def test_a_relative_import_within_a_stage_passes(tmp_path: Path) -> None:
    package = _package(
        tmp_path,
        {"render/a.py": "", "render/b.py": "from .a import x\nfrom . import a\n"},
    )
    assert wrong_imports(package / "render" / "b.py", package) == []
    mine, _ = imported(
        parsed(package / "render" / "b.py"), "ghafgen.render.b", False, package
    )
    assert mine == {"ghafgen.render", "ghafgen.render.a"}


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
    return {n.name: n for n in parsed(path).body if isinstance(n, ast.FunctionDef)}


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_entry_point_arguments_are_the_parameters(path: Path) -> None:
    """`plan(profile, board, name)` in a docstring names parameters `plan` has."""
    doc = ast.get_docstring(parsed(path)) or ""
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


# The catalog is one object (catalog/catalog.py), handed down from the command
# line: no stage reaches a catalog fact through a module-level function of
# the modules that read the data files. `load()`, the one way to get the
# object, is called by the commands, and by the profile format for the shipped
# pins it documents (profile/spec.py says why).
CATALOG_FACT_MODULES = ("catalog", "read", "gpu")
LOAD_ALLOWED = ("cli/", "profile/spec.py")


def catalog_functions(package: Path = PACKAGE) -> dict[str, set[str]]:
    """Module name -> the module-level functions of the catalog modules that
    read the data (`ghafgen.catalog` re-exports `load`)."""
    out = {}
    for stem in CATALOG_FACT_MODULES:
        path = package / "catalog" / f"{stem}.py"
        if path.exists():
            out[f"{package.name}.catalog.{stem}"] = {
                n.name for n in parsed(path).body if isinstance(n, ast.FunctionDef)
            }
    init = package / "catalog" / "__init__.py"
    out[f"{package.name}.catalog"] = {
        a.asname or a.name
        for n in parsed(init).body
        if isinstance(n, ast.ImportFrom)
        for a in n.names
        if any(a.name in fs for fs in out.values())
    }
    return out


def catalog_calls(path: Path, package: Path = PACKAGE) -> list[str]:
    """Calls in the file at `path` of a catalog module-level function (by a
    name imported from the module, or through the module), and imports of
    catalog.read, whose loaders are the catalog object's own."""
    functions = catalog_functions(package)
    here = module_name(path, package)
    tree = parsed(path)
    names: dict[str, str] = {}  # local name -> the function's dotted name
    modules: dict[str, str] = {}  # local name -> catalog module
    wrong = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            base = resolve(
                node.module or "", node.level, here, path.name == "__init__.py"
            )
            for a in node.names:
                local = a.asname or a.name
                if f"{base}.{a.name}" in functions:
                    modules[local] = f"{base}.{a.name}"
                elif a.name in functions.get(base, ()):
                    names[local] = f"{base}.{a.name}"
            if base == f"{package.name}.catalog.read" or any(
                f"{base}.{a.name}" == f"{package.name}.catalog.read" for a in node.names
            ):
                wrong.append(f"line {node.lineno}: imports catalog.read")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in functions and a.asname:
                    modules[a.asname] = a.name
                if a.name == f"{package.name}.catalog.read":
                    wrong.append(f"line {node.lineno}: imports catalog.read")
    rel = path.relative_to(package).as_posix()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        f = node.func
        called = None
        if isinstance(f, ast.Name) and f.id in names:
            called = names[f.id]
        elif isinstance(f, ast.Attribute):
            mod = modules.get(_dotted(f.value)) or (
                _dotted(f.value) if _dotted(f.value) in functions else None
            )
            if mod is not None and f.attr in functions[mod]:
                called = f"{mod}.{f.attr}"
        if called is None:
            continue
        if called.endswith(".load") and rel.startswith(LOAD_ALLOWED):
            continue
        wrong.append(f"line {node.lineno}: {called}()")
    return wrong


OUTSIDE_CATALOG = [p for p in SOURCES if p.relative_to(PACKAGE).parts[0] != "catalog"]


@pytest.mark.parametrize(
    "path", OUTSIDE_CATALOG, ids=lambda p: str(p.relative_to(PACKAGE))
)
def test_no_stage_calls_a_catalog_global(path: Path) -> None:
    wrong = catalog_calls(path)
    assert not wrong, (
        f"{module_name(path)} reaches catalog facts without the Catalog it is "
        f"given (board.catalog, or a `cat` parameter): {'; '.join(wrong)}"
    )


@pytest.mark.parametrize(
    ("planted", "expected"),
    [
        ("from ghafgen.catalog.gpu import gpu_group\ngpu_group({}, None)\n",
         "ghafgen.catalog.gpu.gpu_group()"),
        ("from ghafgen import catalog\ncatalog.load().board('x')\n",
         "ghafgen.catalog.load()"),
        ("from ghafgen.catalog import load as cat\ncat()\n", "ghafgen.catalog.load()"),
        ("import ghafgen.catalog.read as r\nr.sources({})\n",
         "ghafgen.catalog.read.sources()"),
        ("from ..catalog import catalog\ncatalog.load()\n",
         "ghafgen.catalog.catalog.load()"),
        ("from ghafgen.catalog.read import DATA\n", "imports catalog.read"),
    ],
)  # fmt: skip
def test_the_catalog_call_check_sees_a_planted_global(
    tmp_path: Path, planted: str, expected: str
) -> None:
    package = _package(tmp_path, {"render/out.py": planted})
    for stem in CATALOG_FACT_MODULES:
        real = (PACKAGE / "catalog" / f"{stem}.py").read_text(encoding="utf-8")
        (package / "catalog" / f"{stem}.py").write_text(real)
    (package / "catalog" / "__init__.py").write_text(
        (PACKAGE / "catalog" / "__init__.py").read_text(encoding="utf-8")
    )
    wrong = catalog_calls(package / "render" / "out.py", package)
    assert any(expected in w for w in wrong), wrong
    # What the stages do instead: the catalog they are given.
    (package / "render" / "ok.py").write_text(
        "from ghafgen.catalog import Catalog\n"
        "def f(cat: Catalog, board):\n"
        "    return cat.qemu_virt, board.catalog.gpu_group, cat.board('x')\n"
    )
    assert catalog_calls(package / "render" / "ok.py", package) == []
