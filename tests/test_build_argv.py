"""`ghafgen build` argv: pure builders, checked without running Nix."""

from __future__ import annotations

import pytest

from ghafgen.toolchain.nixbuild import (
    BuildOptions,
    build_argv,
    nix_options,
    option_pair,
)
from tests.conftest import run_ghafgen

HEAD = ["nix", "--extra-experimental-features", "nix-command flakes", "build"]
TAIL = ["--print-build-logs", "--show-trace"]


def test_a_target_builds_its_nixos_toplevel():
    assert build_argv("orin", BuildOptions()) == [
        *HEAD,
        "--json",
        "--no-link",
        *TAIL,
        "--",
        ".#nixosConfigurations.orin.config.system.build.toplevel",
    ]


def test_the_flake_option_names_where_the_target_lives():
    argv = build_argv("orin", BuildOptions(flake="github:me/board"))
    assert (
        argv[-1]
        == "github:me/board#nixosConfigurations.orin.config.system.build.toplevel"
    )


@pytest.mark.parametrize(
    "given",
    ["other#packages.aarch64-linux.x", ".#nixosConfigurations.a.config.x", "#x"],
)
def test_flake_attr_is_built_as_given(given: str):
    argv = build_argv(given, BuildOptions(flake="ignored"))
    assert argv[-2:] == ["--", given]


def test_out_link_replaces_no_link():
    argv = build_argv("orin", BuildOptions(out_link="result-orin"))
    assert "--no-link" not in argv
    i = argv.index("--out-link")
    assert argv[i + 1] == "result-orin" and i < argv.index("--")


def test_options_go_through_in_nix_form_in_order():
    argv = build_argv("t", BuildOptions(options=(("sandbox", "false"), ("a", "b c"))))
    i = argv.index("--option")
    assert argv[i : i + 6] == ["--option", "sandbox", "false", "--option", "a", "b c"]


def test_nix_two_value_option_form():
    args, old = nix_options(
        ["--option", "sandbox", "false", "t", "--option=cores", "4"]
    )
    assert old == 0
    assert [option_pair(a) for a in args if "\0" in a] == [
        ("sandbox", "false"),
        ("cores", "4"),
    ]
    assert "t" in args


def test_old_name_equals_value_form_is_counted_as_deprecated():
    args, old = nix_options(["--option", "sandbox=false", "t", "--option=x=y"])
    assert old == 2
    assert [option_pair(a) for a in args if "=" in a] == [
        ("sandbox", "false"),
        ("x", "y"),
    ]


def test_a_value_may_contain_equals_and_be_empty():
    args, _ = nix_options(["--option", "substituters", "", "--option", "k", "a=b"])
    assert [option_pair(a) for a in args if a != "--option"] == [
        ("substituters", ""),
        ("k", "a=b"),
    ]


def test_arguments_after_double_dash_are_untouched():
    args, old = nix_options(["t", "--", "--option", "x"])
    assert (args, old) == (["t", "--", "--option", "x"], 0)


def test_an_option_without_value_is_rejected():
    assert option_pair("onlyname") is None


def test_cli_print_command_has_every_form():
    done = run_ghafgen(
        "build",
        "--print-command",
        "--option",
        "sandbox",
        "false",
        "--out-link",
        "result",
        "--flake",
        "/x/flake",
        "orin",
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "nix --extra-experimental-features 'nix-command flakes' build --json "
        "--out-link result --print-build-logs --show-trace --option sandbox false -- "
        "'/x/flake#nixosConfigurations.orin.config.system.build.toplevel'"
    )
    assert done.stderr == ""


def test_cli_old_option_form_still_works_with_a_note():
    done = run_ghafgen("build", "--print-command", "--option", "sandbox=false", "f#a")
    assert done.returncode == 0
    assert done.stdout.strip().endswith("--option sandbox false -- 'f#a'")
    assert "deprecated; write --option NAME VALUE" in done.stderr


def test_cli_option_missing_its_value_is_a_usage_error():
    done = run_ghafgen("build", "--print-command", "t", "--option", "sandbox")
    assert done.returncode == 2
    assert "write --option NAME VALUE" in done.stderr
