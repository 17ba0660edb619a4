"""Stage 4, rendering: the plan (every decision about the output, made once),
the device trees and patches, the templates that only print the plan, and
the writer that puts files in place atomically with a manifest.

Entry points: `plan(profile, board, profile_name, layout)`, `render_target(plan)`,
`write_all(profiles, outdir, ...)`.
"""

from ghafgen.render.files import render_target
from ghafgen.render.plan import plan
from ghafgen.render.write import write_all

__all__ = ["plan", "render_target", "write_all"]
