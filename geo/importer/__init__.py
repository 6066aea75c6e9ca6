"""Import official zone files: read, decode, find the CRS, map fields, validate, preview.

A district bureau's file (Shapefile, GeoPackage, GeoJSON or KML) becomes zones of one
layer (and one district, if given): they replace that layer's zones, every other zone is
kept, and the result is a new store version. The same code serves ``zoning import`` and
``POST /v1/admin/import``; both show the :class:`ImportReport` (counts, areas, CRS and
how it was determined, encoding, extent, sample rows, problems) before anything is
written, and nothing is written when there is any problem.

Real files are messy, so each step says what it did: the DBF encoding is detected when
no ``.cpg`` names it, a Gauss-Krüger ``.prj`` whose zone prefix disagrees with the
eastings is corrected (with a warning), a missing CRS is refused rather than guessed,
Z/M values are dropped with a warning, and invalid rings are reported with their feature
and location (or repaired with ``make_valid`` when asked, area change reported).
"""


from geo.importer.options import (
    ImportOptions,
    ImportReport,
    SourceError,
    UnsupportedFormatError,
    parse_mapping,
    parse_values,
)
from geo.importer.pipeline import prepare_import, read_features, run_import
from geo.importer.read import FORMATS

__all__ = ["FORMATS", "ImportOptions", "ImportReport", "SourceError", "UnsupportedFormatError", "parse_mapping",
           "parse_values", "prepare_import", "read_features", "run_import"]
