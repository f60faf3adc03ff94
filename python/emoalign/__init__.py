"""emoalign: judge machine emotion raters (VLMs, FER models) against the human inter-rater ceiling.

Stages (each a sub-package; data flows forward only)::

    stimuli/   scan + check a stimulus set          -> stimuli.parquet
    humans/    import + validate human ratings      -> humans.parquet
    simulate/  a paper-calibrated simulated study   -> all of the above + machine ratings
    raters/    run VLM / FER models on stimuli      -> runs/<run>/ratings.parquet
    spec/      declarative YAML analysis specs
    analysis/  comparison frame + analysis kinds (R via rpy2) -> results/<id>.parquet
    report/    sections, tables and figures of a results directory
    render/    quarto/report.qmd -> report.html / report.pdf (Quarto, or offline)
    pipeline.py  the whole chain on the built-in study (``emoalign demo``)

``data/`` holds the Arrow schemas of every table (the public contract) and atomic readers/writers;
``registry.py`` the one registry of extensions (kinds, FER models, VLM backends, commands);
docs/architecture.md shows how they fit together.
"""

__version__ = "0.1.0"

from emoalign.errors import EmoalignError  # noqa: E402

__all__ = ["EmoalignError", "__version__"]
