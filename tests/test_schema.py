"""`ghafgen schema` agrees with the checker: reference profiles pass it, typos fail it."""

from __future__ import annotations

import json
import tomllib

import jsonschema
import pytest
from typer.testing import CliRunner

from ghafgen.cli import app
from ghafgen.profile.schema import json_schema
from tests.conftest import BAD, PROFILES

SCHEMA = json_schema()
# One validator of the draft SCHEMA names; `jsonschema.validate` would check the
# schema itself again on every call (the first test does that once).
VALIDATOR = jsonschema.validators.validator_for(SCHEMA)(SCHEMA)


def test_schema_is_valid_draft_2020_12():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


@pytest.mark.parametrize("path", PROFILES, ids=[p.stem for p in PROFILES])
def test_reference_profiles_match_schema(path):
    VALIDATOR.validate(tomllib.loads(path.read_text()))


SYNTAX_RULES = ("GG002", "GG003", "GG004", "GG005", "GG006", "GG007")
# Format-level cases; a newline inside a string is checked in code, not by pattern.
FORMAT_CASES = [
    p
    for p in BAD
    if any(r in p.read_bytes().split(b"\n", 1)[0].decode() for r in SYNTAX_RULES)
    and "description-newline" not in p.name
]


@pytest.mark.parametrize("path", FORMAT_CASES, ids=[p.stem for p in FORMAT_CASES])
def test_schema_rejects_what_the_checker_rejects_as_syntax(path):
    doc = tomllib.loads(path.read_text())
    with pytest.raises(jsonschema.ValidationError):
        VALIDATOR.validate(doc)


def test_cli_prints_the_schema():
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    assert json.loads(result.output) == SCHEMA
