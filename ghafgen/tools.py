"""Every external process ghafgen starts goes through `run` (argv lists, never a shell).

Command builders elsewhere are pure functions returning argv, so tests can
assert on them without running anything; `Runner` lets tests inject a fake
beside the tests that run the real tool.
"""

from __future__ import annotations

import logging
import shlex
import shutil
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ghafgen.errors import ToolError, ToolMissing

log = logging.getLogger("ghafgen.tools")

# One-line install hints, shown when a tool is missing.
INSTALL = {
    "nix": "install Nix: apt-get install nix-bin (Debian) or see nixos.org/download",
    "nix-instantiate": "install Nix: apt-get install nix-bin",
    "nix-prefetch-url": "install Nix: apt-get install nix-bin",
    "dtc": "install dtc: apt-get install device-tree-compiler",
    "fdtoverlay": "install fdtoverlay: apt-get install device-tree-compiler",
    "qemu-system-aarch64": "install QEMU: apt-get install qemu-system-arm",
    "git": "install git: apt-get install git",
    "cpp": "install cpp: apt-get install cpp",
    "dot": "install Graphviz: apt-get install graphviz",
}
# Flags that make the Debian nix-bin (2.8) usable for flakes and offline.
NIX_FEATURES = ["--extra-experimental-features", "nix-command flakes"]


@dataclass(frozen=True)
class ToolResult:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    def or_raise(self) -> ToolResult:
        """Raise ToolError on a non-zero exit, with the command and the end of stderr."""
        if self.returncode != 0:
            tail = "\n".join(self.stderr.strip().splitlines()[-20:])
            raise ToolError(
                f"$ {shlex.join(self.argv)} exited {self.returncode}\n{tail}"
            )
        return self


Runner = Callable[..., ToolResult]


def which(tool: str) -> str:
    """Path of `tool`. Raises ToolMissing with an install hint."""
    path = shutil.which(tool)
    if path is None:
        raise ToolMissing(f"{tool} not found; {INSTALL.get(tool, 'install it')}")
    return path


def run(
    argv: Sequence[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: str | None = None,
    on_line: Callable[[str], None] | None = None,
) -> ToolResult:
    """Run argv; with `on_line`, stream stderr lines to it as they come (progress)."""
    which(argv[0])
    log.debug("$ %s", shlex.join(argv))
    if on_line is None:
        done = subprocess.run(
            list(argv),
            cwd=cwd,
            env=env,
            input=input,
            capture_output=True,
            text=True,
            check=False,
        )
        return ToolResult(tuple(argv), done.returncode, done.stdout, done.stderr)
    proc = subprocess.Popen(
        list(argv),
        cwd=cwd,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if input else None,
    )
    if input:
        assert proc.stdin is not None
        proc.stdin.write(input)
        proc.stdin.close()
    lines = []
    assert proc.stderr is not None and proc.stdout is not None
    for line in proc.stderr:
        lines.append(line)
        on_line(line.rstrip("\n"))
    out = proc.stdout.read()
    return ToolResult(tuple(argv), proc.wait(), out, "".join(lines))
