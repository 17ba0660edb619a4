"""Hostile strings cannot change the meaning of generated Nix, DTS, shell or comments.

The filters are checked against the real parsers: Nix evaluates each escaped
string back to the original, dtc stores each DTS string byte for byte.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghafgen import catalog
from ghafgen.profile.parse import load_text
from ghafgen.render import escape
from ghafgen.render.files import _only_escaped, render_target
from ghafgen.render.plan import plan
from ghafgen.rules.engine import apply_rules
from tests.conftest import AGX, require
from tests.trees import Tree

HOSTILE = [
    '"',
    "\\",
    '${builtins.abort "x"}',
    "''",
    "''${x}",
    "'",
    "\n",
    "\r\n",
    "\t",
    "$",
    "${",
    "\\${",
    "*/",
    "/*",
    "#",
    "; rm -rf /",
    "`id`",
    "$(id)",
    'a"b\\"c',
    "é ü 日本",
    "\x7f",
]
text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40
)


def nix_eval_list(literals: list[str]) -> list[str]:
    expr = "[ " + " ".join(literals) + " ]"
    done = subprocess.run(
        ["nix-instantiate", "--eval", "--strict", "--json", "-E", expr],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return list(json.loads(done.stdout))


def test_nix_strings_evaluate_back_to_the_original():
    require("nix-instantiate")
    values = [v for v in HOSTILE if "\x00" not in v]
    assert nix_eval_list([escape.nix_str(v) for v in values]) == values


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(text.filter(lambda s: "\x00" not in s), min_size=1, max_size=20))
def test_nix_strings_property(values: list[str]):
    require("nix-instantiate")
    assert nix_eval_list([escape.nix_str(v) for v in values]) == values


@given(text)
def test_nix_attr_is_bare_only_when_safe(value: str):
    out = escape.nix_attr(value)
    if not out.startswith('"'):
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_'-]*", out)


def test_dts_strings_are_stored_verbatim(tmp_path: Path):
    require("dtc")
    values = [v for v in HOSTILE if not any(ord(c) < 0x20 for c in v)]
    props = "\n".join(f"\tp{i} = {escape.dts_str(v)};" for i, v in enumerate(values))
    src = tmp_path / "t.dts"
    src.write_text(f"/dts-v1/;\n/ {{\n{props}\n}};\n", encoding="utf-8")
    out = tmp_path / "t.dtb"
    subprocess.run(
        ["dtc", "-q", "-I", "dts", "-O", "dtb", "-o", str(out), str(src)], check=True
    )
    tree = Tree(out)
    for i, v in enumerate(values):
        assert tree.maybe("/", f"p{i}") == v.encode() + b"\0"


def test_dts_refuses_control_characters_and_odd_names():
    with pytest.raises(ValueError):
        escape.dts_str("a\nb")
    for bad in ("a b", "x;y", 'q"', "{}"):
        with pytest.raises(ValueError):
            escape.dts_name(bad)


@given(text)
def test_comments_stay_on_one_line_and_inside_block_comments(value: str):
    out = escape.comment(value)
    assert "\n" not in out and "\r" not in out and "*/" not in out


def test_nix_path_refuses_escapes():
    for bad in ("../x", "a/../b", "/abs", "a b", "x;y", "${x}"):
        with pytest.raises(ValueError):
            escape.nix_path(bad)
    assert escape.nix_path("vms/net-vm.nix") == "vms/net-vm.nix"


def test_templates_cannot_print_unescaped_strings():
    with pytest.raises(TypeError):
        _only_escaped('"; evil')
    assert _only_escaped(escape.nix_str("x")) == '"x"'
    assert _only_escaped(3) == 3


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200).filter(lambda s: "\n" not in s and "\r" not in s))
def test_hostile_description_only_reaches_comments(description: str):
    """Any description the checker accepts lands in comments and cannot add Nix code."""
    toml_value = json.dumps(description)  # a valid TOML basic string for any text
    profile_text = (
        AGX + f"description = {toml_value}\n"
        "[hardware.nvidia.virtualization]\nenable = true\n"
        '[hardware.nvidia.passthroughs.uarta]\nvm = "a"\n'
        '[vms.a]\nvcpus = 1\nmemory = "1G"\n'
    )
    result = load_text(profile_text, "p.toml")
    if result.profile is None:
        return  # refused with a finding: nothing is generated
    board, _found = apply_rules(result, catalog.load())
    assert board is not None
    files = render_target(plan(result.profile, board, "p.toml"))
    baseline = render_target(
        plan(
            load_text(
                profile_text.replace(f"description = {toml_value}\n", ""), "p.toml"
            ).profile,
            board,
            "p.toml",
        )
    )
    for rel, data in files.items():
        if rel.endswith(".nix"):
            code = [
                ln
                for ln in data.decode().split("\n")
                if not ln.lstrip().startswith("#")
            ]
            base = [
                ln
                for ln in baseline[rel].decode().split("\n")
                if not ln.lstrip().startswith("#")
            ]
            assert code == base, rel
