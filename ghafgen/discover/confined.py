"""Paths under a `--root` resolved one component at a time, never leaving it.

Entry point: `Confined(root).open_parent(rel)` -> (folder descriptor, last name).
A captured tree is someone else's files: a link in it
(`proc/device-tree/model -> /home/me/.ssh/id_ed25519`) must not make ghafgen
read, report or copy a file from outside. Each folder is opened with
O_NOFOLLOW relative to the one before; a link is read and resolved here, and
refused when its target leaves the root. On the live tree (`--root /`) nothing
can leave, and sysfs's own links (`/sys/bus/pci/devices/*`,
`/proc/device-tree`) resolve as the kernel resolves them.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from ghafgen.errors import GhafgenError

# Linux's own limit on links followed in one lookup (MAXSYMLINKS).
MAX_LINKS = 40
# O_PATH: a folder on the way needs search permission only, as in a plain lookup.
_DIR_FLAGS = os.O_PATH | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Escapes(GhafgenError):
    """A path under the root leads outside it, or through too many links."""


class Confined:
    def __init__(self, root: Path) -> None:
        self.root = root
        # Absolute link targets are compared with the root as the kernel sees it.
        self.real = Path(os.path.realpath(root))

    def _absolute(self, rel: str, target: str) -> list[str]:
        """The parts under the root of an absolute link target, or Escapes."""
        try:
            inside = Path(target).relative_to(self.real)
        except ValueError:
            raise Escapes(
                f"{self.root / rel}: a link to {target!r}, outside --root; ghafgen "
                "reads only files inside the tree it is given"
            ) from None
        return list(inside.parts)

    @contextlib.contextmanager
    def open_parent(
        self, rel: str, *, follow_last: bool = True
    ) -> Iterator[tuple[int, str]]:
        """(descriptor of the folder holding `rel`'s last component, its name).

        Links on the way are resolved inside the root; the last component's
        link too when `follow_last`. The name is "." for the root itself.

        Raises:
            Escapes: a link leads outside the root, or there are too many.
            FileNotFoundError, NotADirectoryError, OSError: as open(2) says.
        """
        todo = [p for p in rel.split("/") if p not in ("", ".")]
        stack: list[int] = [os.open(self.root, _DIR_FLAGS & ~os.O_NOFOLLOW)]
        done: list[str] = []  # the parts walked, for messages
        links, via = 0, ""
        try:
            while todo:
                part = todo.pop(0)
                if part == "..":
                    if len(stack) == 1:
                        raise Escapes(
                            f"{self.root / rel}: {via or 'the path'} leads above "
                            "--root; ghafgen reads only files inside the tree it is given"
                        )
                    os.close(stack.pop())
                    done.pop()
                    continue
                st = os.stat(part, dir_fd=stack[-1], follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode) and (todo or follow_last):
                    links += 1
                    if links > MAX_LINKS:
                        raise Escapes(f"{self.root / rel}: more than {MAX_LINKS} links")
                    target = os.readlink(part, dir_fd=stack[-1])
                    via = f"a link to {target!r}"
                    if target.startswith("/"):
                        parts = self._absolute("/".join([*done, part]), target)
                        for fd in stack[1:]:
                            os.close(fd)
                        del stack[1:]
                        done.clear()
                    else:
                        parts = target.split("/")
                    todo[:0] = [p for p in parts if p not in ("", ".")]
                    continue
                if not todo:
                    yield stack[-1], part
                    return
                stack.append(os.open(part, _DIR_FLAGS, dir_fd=stack[-1]))
                done.append(part)
            yield stack[-1], "."
        finally:
            for fd in stack:
                os.close(fd)
