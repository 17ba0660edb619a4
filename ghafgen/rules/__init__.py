"""Validation rules; importing this package registers every rule."""

from ghafgen.rules import (
    bpmp,
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
from ghafgen.rules.registry import REGISTRY

__all__ = [
    "REGISTRY",
    "bpmp",
    "iommu",
    "isolation",
    "ownership",
    "partitions",
    "pcie",
    "sharing",
    "sources",
    "system",
    "targets",
]
