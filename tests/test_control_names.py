"""Names with control characters anywhere (a trailing newline above all) are refused.

Every name a profile chooses becomes a file name, a Nix attribute, a unit name
or a QEMU argument; Python's `$` matches before a final newline, so the checks
use full-string matching. Property tests over every named table and over the
output filters, plus the `new-target` arguments.
"""

from __future__ import annotations

import json
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ghafgen import catalog
from ghafgen.discover.newtarget import draft
from ghafgen.errors import ProfileError
from ghafgen.findings import Finding, Location, Severity
from ghafgen.profile import spec
from ghafgen.profile.parse import load_text
from ghafgen.render import escape
from ghafgen.units import parse_size
from tests.conftest import AGX
from tests.test_properties import SETTINGS

names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
controls = st.characters(min_codepoint=0, max_codepoint=0x1F) | st.just("\x7f")


@st.composite
def tainted(draw: st.DrawFn) -> str:
    """A valid name with a control character put in somewhere (often at the end)."""
    name = draw(names)
    where = draw(st.one_of(st.just(len(name)), st.integers(0, len(name))))
    return name[:where] + draw(controls) + name[where:]


def q(text: str) -> str:
    return json.dumps(text).replace("\x7f", "\\u007f")


# Where a chosen name goes in a profile: (TOML text with NAME, key path of the name).
PLACES = {
    "vm": '[vms.NAME]\nvcpus = 1\nmemory = "1G"\n',
    "passthrough": (
        "[hardware.nvidia.virtualization]\nenable = true\n"
        '[hardware.nvidia.passthroughs.NAME]\ndevice = "uarta"\nvm = "v"\n'
        '[vms.v]\nvcpus = 1\nmemory = "1G"\n'
    ),
    "passthrough-vm": (
        "[hardware.nvidia.virtualization]\nenable = true\n"
        "[hardware.nvidia.passthroughs.uarta]\nvm = NAMEVALUE\n"
    ),
    "channel": (
        '[vms.a]\nvcpus = 1\nmemory = "1G"\n[vms.b]\nvcpus = 1\nmemory = "1G"\n'
        '[channels.NAME]\nvms = ["a", "b"]\nsize = "2M"\n'
    ),
    "channel-member": (
        '[vms.a]\nvcpus = 1\nmemory = "1G"\n'
        '[channels.c]\nvms = ["a", NAMEVALUE]\nsize = "2M"\n'
    ),
    "volume": (
        '[vms.a]\nvcpus = 1\nmemory = "1G"\n[vms.a.volumes.NAME]\nsize = "1G"\n'
        'mount = "/data"\ndisk = "nvme"\n[disks.nvme]\nsize = "64G"\n'
    ),
    "disk": '[disks.NAME]\nsize = "64G"\n',
    "source": '[sources.NAME]\nurl = "https://example.org/x.git"\n',
}


@pytest.mark.parametrize("place", sorted(PLACES))
@SETTINGS
@given(bad=tainted())
def test_a_name_with_a_control_character_is_refused(place: str, bad: str):
    body = PLACES[place].replace("NAMEVALUE", q(bad)).replace("NAME", q(bad))
    result = load_text(AGX + body, "p.toml")
    assert result.profile is None
    ids = {f.rule_id for f in result.findings if f.severity is Severity.ERROR}
    assert ids & {"GG005", "GG007"}, [f.render() for f in result.findings]
    for f in result.findings:
        assert not re.search(r"[\x00-\x09\x0b-\x1f\x7f]", f.render())
        assert "\n" not in f.render().split("\n  hint: ")[0]


@SETTINGS
@given(bad=tainted())
def test_target_name_with_a_control_character_is_refused(bad: str):
    text = f'[target]\nname = {q(bad)}\nboard = "jetson-agx-orin-devkit"\n'
    result = load_text(text, "p.toml")
    assert result.profile is None
    assert any(f.rule_id in ("GG005", "GG007") for f in result.findings)


@SETTINGS
@given(bad=tainted())
def test_every_name_pattern_refuses_it(bad: str):
    patterns = {t.name_pattern for t in spec.TABLES if t.name_pattern} | {
        spec.VM_NAME,
        spec.TARGET_NAME,
        spec.PASSTHROUGH_NAME,
        spec.SOURCE_NAME,
        spec.SOURCE_URL,
        spec.SOURCE_REV,
        spec.KERNEL_PARAM,
    }
    for pattern in patterns:
        assert re.fullmatch(pattern, bad) is None, pattern


@SETTINGS
@given(bad=tainted())
def test_output_filters_never_print_it_bare(bad: str):
    for refuse in (escape.nix_path, escape.dts_name):
        with pytest.raises(ValueError):
            refuse(bad)
    # Never a bare attribute: a quoted string, which Nix reads back verbatim
    # (tests/test_escaping.py evaluates it), with no line break of its own.
    printed = str(escape.nix_attr(bad))
    assert printed.startswith('"') and printed.endswith('"')
    assert "\n" not in printed and "\r" not in printed
    assert parse_size("1G" + bad[-1]) is None


@SETTINGS
@given(bad=tainted())
def test_new_target_arguments_refuse_it(bad: str):
    with pytest.raises(ProfileError):
        draft(bad, "jetson-agx-orin-devkit", [], [], None, catalog.load())
    with pytest.raises(ProfileError):
        draft("t", "jetson-agx-orin-devkit", [f"uarta:{bad}"], [], None, catalog.load())
    with pytest.raises(ProfileError):
        draft("t", "jetson-agx-orin-devkit", [], [f"{bad}:1:1G"], None, catalog.load())


@SETTINGS
@given(text=st.text(max_size=20))
def test_a_finding_prints_one_line_whatever_a_key_holds(text: str):
    f = Finding(
        "GG002",
        "unknown-key",
        Severity.ERROR,
        Location(f"p{text}.toml", 1),
        f"unknown key '{text}'",
    )
    assert not re.search(r"[\x00-\x1f\x7f]", f.render())
