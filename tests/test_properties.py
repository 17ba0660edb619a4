"""Random profiles: valid ones validate and generate deterministically into files the
real Nix and dtc accept; invalid ones give a clean finding and write nothing.

Examples per run: 12 by default, 60 in CI (GHAFGEN_HYPOTHESIS_EXAMPLES overrides).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ghafgen import catalog
from ghafgen.cli.pipeline import generate
from ghafgen.profile.parse import load_text
from ghafgen.render.files import render_target
from ghafgen.render.plan import plan
from ghafgen.rules.engine import apply_rules
from tests.conftest import require
from tests.trees import run

EXAMPLES = int(
    os.environ.get(
        "GHAFGEN_HYPOTHESIS_EXAMPLES", "60" if os.environ.get("CI") else "12"
    )
)
SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

vm_names = st.from_regex(r"[a-z][a-z0-9-]{0,10}", fullmatch=True)
params = st.lists(
    st.from_regex(r"[a-z][a-z0-9_.=,:-]{0,20}", fullmatch=True), max_size=3
)


def toml_string(text: str) -> str:
    """A TOML basic string without control characters (the checker refuses them;
    tests/test_control_names.py covers those), non-ASCII kept literal."""
    plain = re.sub(r"[\x00-\x1f\x7f]", " ", text)
    return json.dumps(plain, ensure_ascii=False)


@st.composite
def valid_profiles(draw: st.DrawFn) -> str:
    """A profile that breaks no error rule: the strategy encodes the hardware rules."""
    flavor = draw(st.sampled_from(["l4t", "mainline"]))
    vms = draw(st.lists(vm_names, min_size=1, max_size=4, unique=True))
    pick = st.sampled_from(vms)
    out = [
        "[target]",
        'name = "random-target"',
        'board = "jetson-agx-orin-devkit"',
        f'dt_flavor = "{flavor}"',
        f"description = {toml_string(draw(st.text(max_size=40)))}",
    ]
    platform: list[tuple[str, str]] = []
    uart_vm = draw(pick)  # UARTA and UARTI share the passthrough stream ID: one VM
    if draw(st.booleans()):
        platform.append(("uarta", uart_vm))
    if flavor == "l4t" and draw(st.booleans()):
        platform.append(("uarti", uart_vm))
    if draw(st.booleans()):
        platform.append(("mgbe0", draw(pick)))
    owners = {vm for _d, vm in platform}
    if platform:
        out += ["[hardware.nvidia.virtualization]", "enable = true"]
        # UARTA and MGBE0 are BPMP-backed: in two VMs they need one proxy
        # device each (GG307).
        bpmp_vms = {vm for dev, vm in platform if dev in ("uarta", "mgbe0")}
        if len(bpmp_vms) > 1:
            out.append("bpmp_per_vm = true")
    for dev, vm in platform:
        out += [f"[hardware.nvidia.passthroughs.{dev}]", f'vm = "{vm}"']
    if draw(st.booleans()):
        vm = draw(pick)
        owners.add(vm)
        out += [
            "[hardware.nvidia.passthroughs.wifi]",
            'device = "pcie-m2e"',
            f'vm = "{vm}"',
            'kind = "wifi"',
            'functions = ["0001:01:00.0"]',
        ]
    if draw(st.booleans()):
        vm = draw(pick)
        owners.add(vm)
        bar = draw(st.sampled_from(["256M", "1G", "2G", "4G", "8G"]))
        out += [
            "[hardware.nvidia.passthroughs.gpu]",
            'device = "pcie-x8"',
            f'vm = "{vm}"',
            'kind = "gpu"',
            'functions = ["0005:01:00.0", "0005:01:00.1"]',
            f"max_power_w = {draw(st.integers(10, 30))}",
            f'bar_size = "{bar}"',
        ]
    for vm in vms:
        if vm not in owners:
            continue  # a VM with nothing would be a GG102 warning; leave it out
        out += [
            f"[vms.{vm}]",
            f"vcpus = {draw(st.integers(1, 4))}",
            f'memory = "{draw(st.sampled_from(["256M", "512M", "1G", "2G"]))}"',
            f"kernel_params = {json.dumps(draw(params))}",
        ]
    return "\n".join(out) + "\n"


def nix_parse(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for rel, data in files.items():
            if rel.endswith(".nix"):
                path = Path(tmp) / rel.replace("/", "_")
                path.write_bytes(data)
                paths.append(str(path))
        if paths:
            run(["nix-instantiate", "--parse", *paths])


def dtc_compile(files: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for rel, data in files.items():
            if rel.endswith(".dts"):
                src = Path(tmp) / "in.dts"
                src.write_bytes(data)
                done = subprocess.run(
                    [
                        "dtc",
                        "-@",
                        "-q",
                        "-I",
                        "dts",
                        "-O",
                        "dtb",
                        "-o",
                        str(Path(tmp) / "out.dtbo"),
                        str(src),
                    ],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                assert done.returncode == 0, (rel, done.stderr)


@SETTINGS
@given(valid_profiles())
def test_random_valid_profiles_generate_deterministically(text: str):
    require("nix-instantiate")
    require("dtc")
    result = load_text(text, "random.toml")
    assert result.profile is not None, [f.render() for f in result.findings]
    board, found = apply_rules(result, catalog.load())
    assert board is not None
    errors = [f.render() for f in found if f.severity.value == "error"]
    assert errors == [], text
    first = render_target(plan(result.profile, board, "random.toml"))
    again = render_target(
        plan(load_text(text, "random.toml").profile, board, "random.toml")
    )
    assert first == again
    nix_parse(first)
    dtc_compile(first)


mutations = st.one_of(
    st.just('\n[vms.a]\nvcpus = "x"\n'),
    st.just("\n[hardware.nvidia.passthroughs.nope]\nvm = 3\n"),
    st.just('\n[target]\nname = "dup"\n'),
    st.text(max_size=30),
    st.builds(
        lambda k, v: f"\n{k} = {v}\n",
        st.from_regex(r"[a-z_]{1,8}", fullmatch=True),
        st.sampled_from(['"x"', "1", "true", "[1, 2]", "{ a = 1 }", '"${x}"']),
    ),
)


@SETTINGS
@given(valid_profiles(), mutations, st.integers(0, 400))
def test_random_invalid_profiles_fail_cleanly_and_write_nothing(
    base: str, noise: str, at: int
):
    text = base[:at] + noise + base[at:]
    with tempfile.TemporaryDirectory() as tmp:
        profile = Path(tmp) / "p.toml"
        profile.write_text(text, encoding="utf-8")
        out = Path(tmp) / "out"
        result = generate([profile], out, catalog.load())  # never raises on bad input
        if result.report.exit_code != 0:
            assert not out.exists(), "files written for an invalid profile"
            for f in result.report.findings:
                assert f.rule_id.startswith("GG") and f.src.line >= 1
        else:
            assert result.outcomes, "a valid profile generated nothing"
