# SPDX-FileCopyrightText: ghafgen contributors
# SPDX-License-Identifier: Apache-2.0
#
# nixpkgs python3Packages attribute names of ghafgen's Python dependencies:
# pyproject.toml's `dependencies` (runtime) and its `test` extra (test).
# tests/test_flake.py checks that the two lists stay in step with pyproject.
{
  runtime = [
    "typer"
    "jinja2"
    "libfdt" # PyPI: pylibfdt
    "tomlkit"
  ];
  test = [
    "pytest"
    "hypothesis"
    "ruff"
    "mypy"
    "jsonschema"
    "pexpect"
    "pytest-xdist"
  ];
}
