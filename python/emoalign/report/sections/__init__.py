"""Report sections as markdown strings, printed by ``quarto/report.qmd`` from ``output: asis`` cells.

``paper``: the paper's sections, each reading the analysis that plays its role; ``generic``: every other
analysis by the section registered for its kind (``remedies``: the remedy kinds' sections), or generically.
``base`` holds the section registry and the roles. A section for a new kind is one module here
(:func:`~emoalign.report.sections.base.section`).
"""

from emoalign.report.sections.base import PAPER_ROLES, SECTIONS, Section, note, section, slug  # noqa: F401
from emoalign.report.sections.generic import generic, other_analyses, remedies, render  # noqa: F401
from emoalign.report.sections.paper import *  # noqa: F401,F403  (the qmd prints S.human_ceiling(R), ...)
from emoalign.report.sections.paper import trials_per_image  # noqa: F401
