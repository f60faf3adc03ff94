"""Human ratings: validate a trial-level CSV and import it into the humans table (:func:`import_humans`)."""

from emoalign.humans.importer import ImportReport, import_humans, parse_scale, scales_from_spec

__all__ = ["ImportReport", "import_humans", "parse_scale", "scales_from_spec"]
