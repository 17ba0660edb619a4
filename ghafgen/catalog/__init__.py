"""Stage 1, the hardware catalog: SoC resources, devices and boards, loaded from
the data files under data/ into one `Catalog`, an FDT view over compiled trees,
and the DTB import that drafts catalog entries from a board's tree.

Entry point: `load(data=None)`, the `Catalog`: its boards by name and kernel
series, the runtime pins, the GPU group and the sources (catalog/catalog.py).
"""

from ghafgen.catalog.catalog import Catalog, load
from ghafgen.catalog.read import CatalogError, UnknownSeries

__all__ = ["Catalog", "CatalogError", "UnknownSeries", "load"]
