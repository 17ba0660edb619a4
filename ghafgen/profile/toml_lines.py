"""Map every key of a TOML document to the line it is written on.

`tomllib` gives no positions, so this scanner walks the (already valid) text
once and records `key path -> line`. Entry point: `key_lines(text)`.
"""

from __future__ import annotations

import re

KeyPath = tuple[str | int, ...]

# Runs the scanner steps over at once; none of them holds a newline, so the
# line count is unchanged across each.
_BARE = re.compile(r"[A-Za-z0-9_-]*")
_SCALAR = re.compile(r"[^,\]}\n#]*")
# What a string's text runs to before its next quote or escape.
_PLAIN = {'"': re.compile(r'[^"\\]*'), "'": re.compile(r"[^']*")}


def _past(run: re.Pattern[str], text: str, pos: int) -> int:
    """Where the run of `run` starting at `pos` ends."""
    m = run.match(text, pos)
    return m.end() if m else pos


class _Scanner:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines: dict[KeyPath, int] = {}
        self.table: KeyPath = ()
        self.aot_count: dict[KeyPath, int] = {}

    def peek(self, n: int = 0) -> str:
        i = self.pos + n
        return self.text[i] if i < len(self.text) else ""

    def advance(self, n: int = 1) -> None:
        self.line += self.text.count("\n", self.pos, self.pos + n)
        self.pos += n

    def skip_ws(self, newlines: bool = False) -> None:
        while True:
            c = self.peek()
            if c in (" ", "\t", "\r") or (newlines and c == "\n"):
                self.advance()
            elif c == "#":
                end = self.text.find("\n", self.pos)
                self.pos = len(self.text) if end < 0 else end
            else:
                return

    def string(self) -> str:
        """Read a basic or literal string (single- or multi-line); return its text."""
        quote = self.peek()
        multi = self.text.startswith(quote * 3, self.pos)
        delim = quote * 3 if multi else quote
        self.advance(len(delim))
        out: list[str] = []
        while self.pos < len(self.text):
            if self.text.startswith(delim, self.pos):
                # A multi-line string may end with up to two extra quotes.
                while multi and self.text.startswith(delim + quote, self.pos):
                    out.append(quote)
                    self.advance()
                self.advance(len(delim))
                return "".join(out)
            c = self.peek()
            if quote == '"' and c == "\\":
                out.append(c + self.peek(1))
                self.advance(2)
                continue
            # This character (a quote that ends nothing) and the plain text after it.
            end = _past(_PLAIN[quote], self.text, self.pos + 1)
            out.append(self.text[self.pos : end])
            self.advance(end - self.pos)
        return "".join(out)

    def key(self) -> list[str]:
        parts: list[str] = []
        while True:
            self.skip_ws()
            c = self.peek()
            if c in ('"', "'"):
                raw = self.string()
                parts.append(_unescape(raw) if c == '"' else raw)
            else:
                start = self.pos
                self.pos = _past(_BARE, self.text, start)
                parts.append(self.text[start : self.pos])
            self.skip_ws()
            if self.peek() == ".":
                self.advance()
                continue
            return parts

    def value(self, path: KeyPath) -> None:
        """Skip one value; record keys of inline tables under `path`."""
        self.skip_ws()
        c = self.peek()
        if c in ('"', "'"):
            self.string()
        elif c == "[":
            self.advance()
            index = 0
            while True:
                self.skip_ws(newlines=True)
                if self.peek() == "]":
                    self.advance()
                    return
                self.lines.setdefault(path + (index,), self.line)
                self.value(path + (index,))
                index += 1
                self.skip_ws(newlines=True)
                if self.peek() == ",":
                    self.advance()
        elif c == "{":
            self.advance()
            while True:
                self.skip_ws()
                if self.peek() == "}":
                    self.advance()
                    return
                line = self.line
                sub = path + tuple(self.key())
                self.lines.setdefault(sub, line)
                self.advance()  # '='
                self.value(sub)
                self.skip_ws()
                if self.peek() == ",":
                    self.advance()
        else:
            self.pos = _past(_SCALAR, self.text, self.pos)

    def header(self) -> None:
        array = self.text.startswith("[[", self.pos)
        self.advance(2 if array else 1)
        line = self.line
        path: KeyPath = tuple(self.key())
        self.advance(2 if array else 1)
        if array:
            index = self.aot_count.get(path, 0)
            self.aot_count[path] = index + 1
            self.lines.setdefault(path, line)
            path = path + (index,)
        for i in range(1, len(path) + 1):
            self.lines.setdefault(path[:i], line)
        self.table = path

    def run(self) -> dict[KeyPath, int]:
        while True:
            self.skip_ws(newlines=True)
            if self.pos >= len(self.text):
                return self.lines
            if self.peek() == "[":
                self.header()
                continue
            line = self.line
            parts = tuple(self.key())
            for i in range(1, len(parts) + 1):
                self.lines.setdefault(self.table + parts[:i], line)
            self.skip_ws()
            self.advance()  # '='
            self.value(self.table + parts)


def _unescape(raw: str) -> str:
    if "\\" not in raw:
        return raw
    import tomllib

    return str(tomllib.loads(f'k = "{raw}"')["k"])


def key_lines(text: str) -> dict[KeyPath, int]:
    """Return the 1-based line of every key, table header and array item.

    The text must already parse with `tomllib`; the scanner does not re-check
    the syntax. Paths are tuples of keys, with integer indexes for arrays.
    """
    return _Scanner(text).run()


def line_of(lines: dict[KeyPath, int], path: KeyPath) -> int:
    """Line of `path`, or of its nearest recorded ancestor (1 if none)."""
    for i in range(len(path), 0, -1):
        if path[:i] in lines:
            return lines[path[:i]]
    return 1
