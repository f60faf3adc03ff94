"""Stimulus tables: build one from images (:func:`scan_stimuli`) and check it (:func:`check_stimuli`)."""

from emoalign.stimuli.check import CheckReport, Issue, balance_table, check_stimuli
from emoalign.stimuli.scan import ScanReport, compile_pattern, file_sha256, scan_stimuli

__all__ = ["CheckReport", "Issue", "ScanReport", "balance_table", "check_stimuli", "compile_pattern", "file_sha256", "scan_stimuli"]
