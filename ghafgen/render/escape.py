"""One escaping filter per output language; templates print values only through them.

Each filter returns `Safe`, and the jinja2 environment refuses to print any
plain string, so a profile value cannot reach an output unescaped.
"""

from __future__ import annotations

import re

from markupsafe import Markup


class Safe(Markup):
    """Text already escaped for the output it is printed into.

    A Markup subclass so that jinja2 macros, which return Markup, pass the
    environment's check too; jinja2's HTML escaping itself is never used.
    """


def nix_str(value: object) -> Safe:
    """A Nix double-quoted string literal holding `value` verbatim."""
    text = str(value)
    out = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("${", "\\${")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
        .replace("\t", "\\t")
    )
    return Safe(f'"{out}"')


_NIX_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_'-]*$")
_NIX_KEYWORDS = {
    "if",
    "then",
    "else",
    "assert",
    "with",
    "let",
    "in",
    "rec",
    "inherit",
    "or",
}


def nix_attr(value: object) -> Safe:
    """An attribute name: bare when Nix allows it, else a quoted string."""
    text = str(value)
    if _NIX_IDENT.fullmatch(text) and text not in _NIX_KEYWORDS:
        return Safe(text)
    return nix_str(text)


def dts_str(value: object) -> Safe:
    """A device-tree string literal (dtc accepts C escapes)."""
    text = str(value)
    if any(ord(c) < 0x20 for c in text):
        raise ValueError(f"control character in device-tree string {text!r}")
    return Safe('"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"')


_DT_NAME = re.compile(r"^[A-Za-z0-9,._+@/#?-]+$")


def dts_name(value: object) -> Safe:
    """A node name, label or path as dtc accepts it unquoted; anything else is refused."""
    text = str(value)
    if not _DT_NAME.fullmatch(text):
        raise ValueError(f"not a device-tree node name or path: {text!r}")
    return Safe(text)


def comment(value: object) -> Safe:
    """Free text on one comment line: control characters become spaces.

    `*/` is broken up so that block comments cannot be closed early.
    """
    return Safe(re.sub(r"[\x00-\x1f\x7f]", " ", str(value)).replace("*/", "* /"))


_NIX_PATH = re.compile(r"^[A-Za-z0-9._+-]+(/[A-Za-z0-9._+-]+)*$")


def nix_path(value: object) -> Safe:
    """A relative path for a Nix path literal (`./x/y.nix`); `..` and odd characters refused."""
    text = str(value)
    if not _NIX_PATH.fullmatch(text) or ".." in text.split("/"):
        raise ValueError(f"unsafe path {text!r}")
    return Safe(text)


_SHELL_WORD = re.compile(r"^[A-Za-z0-9_./*+-]+$")


def shell_word(value: object) -> Safe:
    """One word of a shell line inside a Nix indented string: only characters that
    need quoting in neither (a `*` stays a glob); anything else is refused."""
    text = str(value)
    if not _SHELL_WORD.fullmatch(text):
        raise ValueError(f"not a plain shell word: {text!r}")
    return Safe(text)


def patch_text(value: object) -> Safe:
    """A diff body: plain lines, no control characters but newlines and tabs."""
    text = str(value)
    if re.search(r"[\x00-\x08\x0b-\x1f\x7f]", text):
        raise ValueError("control character in patch text")
    return Safe(text.rstrip("\n"))


FILTERS = {
    "nix": nix_str,
    "nix_attr": nix_attr,
    "dts": dts_str,
    "dts_name": dts_name,
    "comment": comment,
    "nix_path": nix_path,
    "patch_text": patch_text,
    "shell_word": shell_word,
}
