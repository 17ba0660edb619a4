"""Stage 4, the rules: every check ghafgen makes, one module per area, each
with a stable ID; the engine that runs them over profiles (alone and per
host); and the reference text `ghafgen rules` prints. Importing this package
registers every rule.

Entry point: `validate(paths, cat)`, giving a Report.
"""

from ghafgen.rules import (
    bpmp,
    gpu,
    gpuroles,
    iommu,
    isolation,
    ownership,
    partitions,
    pcie,
    sharing,
    sources,
    system,
    targets,
)
from ghafgen.rules.engine import Report, validate
from ghafgen.rules.registry import REGISTRY

__all__ = [
    "REGISTRY",
    "Report",
    "bpmp",
    "gpu",
    "gpuroles",
    "iommu",
    "isolation",
    "ownership",
    "partitions",
    "pcie",
    "sharing",
    "sources",
    "system",
    "targets",
    "validate",
]
