"""Plain fixed-width text tables; deterministic and cheap to import.

`render(headers, rows)` pads each column to its widest cell. Given a `width`,
it wraps the widest columns' cells onto more lines until a row fits, and
prints each row's `notes` entry (long free text) indented under the row,
wrapped to the same width; no word is dropped, only moved to the next line.
"""

from __future__ import annotations

import textwrap

GAP = "  "
NOTE_INDENT = "    "
MIN_COLUMN = 8  # narrower than this a column is all line breaks


def _wrap(text: str, width: int) -> list[str]:
    if len(text) <= width:
        return [text]  # as given, spaces and all
    # Long words (a DT path, a URL) are split rather than overflowing.
    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False)


def _fit(widths: list[int], width: int) -> list[int]:
    """Column widths within `width`: the widest column gives a character at a time."""
    fitted = list(widths)
    while sum(fitted) + len(GAP) * (len(fitted) - 1) > width:
        widest = max(range(len(fitted)), key=lambda i: (fitted[i], i))
        if fitted[widest] <= MIN_COLUMN:
            break
        fitted[widest] -= 1
    return fitted


def render(
    headers: list[str],
    rows: list[list[str]],
    *,
    width: int | None = None,
    notes: list[str] | None = None,
) -> str:
    widths = [
        max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
        for i, h in enumerate(headers)
    ]
    if width is not None:
        widths = _fit(widths, width)

    def lines_of(cells: list[str]) -> list[str]:
        wrapped = [_wrap(c, w) for c, w in zip(cells, widths, strict=True)]
        depth = max(len(w) for w in wrapped)
        return [
            GAP.join(
                (w[k] if k < len(w) else "").ljust(n)
                for w, n in zip(wrapped, widths, strict=True)
            ).rstrip()
            for k in range(depth)
        ]

    lines = [*lines_of(headers), GAP.join("-" * w for w in widths)]
    for i, r in enumerate(rows):
        lines += lines_of(r)
        note = notes[i] if notes else ""
        if note:
            lines += (
                textwrap.wrap(
                    note,
                    width,
                    initial_indent=NOTE_INDENT,
                    subsequent_indent=NOTE_INDENT,
                    break_long_words=True,
                    break_on_hyphens=False,
                )
                if width is not None
                else [NOTE_INDENT + note]
            )
    return "\n".join(lines)
