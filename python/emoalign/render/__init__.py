"""Render ``quarto/report.qmd`` for a results folder: with Quarto when it is on PATH, else offline (the .qmd's
Python cells through Jupyter, then pandoc to HTML and Typst to PDF). ``qmd`` reads the .qmd; ``offline`` runs it.
The report's content (sections, tables, figures) lives in :mod:`emoalign.report`; this package only renders."""

from emoalign.render.offline import RenderResult, render_offline, render_quarto, render_report

__all__ = ["RenderResult", "render_offline", "render_quarto", "render_report"]
