"""External sources: every source a profile names is pinned in ghafgen.lock."""

from __future__ import annotations

from collections.abc import Iterator

from ghafgen.catalog.model import Board
from ghafgen.findings import Finding
from ghafgen.profile.lockfile import is_tarball
from ghafgen.profile.model import Profile
from ghafgen.rules.registry import ERROR, WARNING, finding, rule


@rule(
    "GG010",
    "source-unpinned",
    ERROR,
    fix="Run `ghafgen prefetch PROFILE` to pin the source in ghafgen.lock.",
)
def source_unpinned(p: Profile, b: Board) -> Iterator[Finding]:
    """A source the profile names has a current pin in ghafgen.lock beside it."""
    for src in p.sources.values():
        if src.name not in b.catalog.sources:
            continue  # GG011 says it is unknown; pinning it would not help
        pin = p.pins.get(src.name)
        if pin is None:
            yield finding(
                "GG010",
                src.at(),
                f"source '{src.name}' is not pinned",
                f"run `ghafgen prefetch {p.file}`; generation needs a revision "
                "and hash",
            )
        elif not pin.same_source(src.url, src.rev):
            yield finding(
                "GG010",
                src.at("url"),
                f"source '{src.name}' changed since it was pinned ({pin.url}"
                f"{' @ ' + pin.ref if pin.ref else ''})",
                f"run `ghafgen prefetch --update {p.file}`",
            )


@rule(
    "GG011",
    "unknown-source",
    WARNING,
    fix="Remove the source, or name one ghafgen uses (see ghafgen/catalog/data/sources.toml).",
)
def unknown_source(p: Profile, b: Board) -> Iterator[Finding]:
    """A source ghafgen does not use is probably a typo."""
    known = sorted(b.catalog.sources)
    for src in p.sources.values():
        if src.name not in known:
            yield finding(
                "GG011",
                src.at(),
                f"ghafgen does not use a source '{src.name}'",
                "sources ghafgen fetches: " + ", ".join(known),
            )


@rule(
    "GG013",
    "source-not-fetchable",
    ERROR,
    fix="Make the source a git repository (a file:// URL or a path to it) or a tarball URL.",
)
def source_not_fetchable(p: Profile, b: Board) -> Iterator[Finding]:
    """A pin without a revision is a tarball, which Nix can fetch by its hash."""
    for src in p.sources.values():
        pin = p.pins.get(src.name)
        if pin is not None and not pin.rev and not is_tarball(pin.url):
            yield finding(
                "GG013",
                src.at("url"),
                f"source '{src.name}' is a folder pinned by its hash only; a Nix "
                "build cannot fetch a folder",
                "make it a git repository (`git init`, commit) or a tarball, then "
                f"`ghafgen prefetch --update {p.file}`",
            )
