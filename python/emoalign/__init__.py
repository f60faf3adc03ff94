"""emoalign: judge machine emotion raters (VLMs, FER models) against the human inter-rater ceiling.

Stages (each a sub-package; data flows forward only)::

    stimuli/   scan + check a stimulus set          -> stimuli.parquet
    humans/    import + validate human ratings      -> humans.parquet
    simulate/  a paper-calibrated simulated study   -> all of the above + machine ratings
    raters/    run VLM / FER models on stimuli      -> runs/<run>/ratings.parquet
    spec/      declarative YAML analysis specs
    analysis/  comparison frame + analysis kinds (R via rpy2) -> results/<id>.parquet
    report/    Quarto report of a results directory

``data/`` holds the Arrow schemas of every table (the public contract) and atomic readers/writers.
"""

__version__ = "0.1.0"

from emoalign.errors import EmoalignError  # noqa: E402

__all__ = ["EmoalignError", "__version__"]
