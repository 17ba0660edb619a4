"""Stage 2, the profile: the format spec (every key, type and default), the
parser that checks a TOML file against it with line numbers, the model it
builds, the JSON schema and the lock file of pinned sources.

Entry point: `load(path)`, giving a LoadResult (a Profile or syntax findings).
"""

from ghafgen.profile.parse import LoadResult, load

__all__ = ["LoadResult", "load"]
