"""The documentation is true: numpydoc sections on every statistic and kind, kinds' YAML examples valid, and
docs/architecture.md's "a kind in one file" example runs as written (spec -> analyze -> report section)."""

import importlib
import importlib.util
import inspect
import pkgutil
import re
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

import emoalign.analysis.stats as stats
from emoalign.registry import KINDS
from engine_study import SPEC, write_study

DOCS = Path(__file__).resolve().parents[1] / "docs"


def _public_stats_functions():
    for m in pkgutil.iter_modules(stats.__path__):
        mod = importlib.import_module(f"emoalign.analysis.stats.{m.name}")
        for name, f in vars(mod).items():
            if not name.startswith("_") and inspect.isfunction(f) and f.__module__ == mod.__name__:
                yield f"{m.name}.{name}", f


@pytest.mark.parametrize("name,fn", list(_public_stats_functions()), ids=lambda x: x if isinstance(x, str) else "")
def test_every_statistic_has_the_numpydoc_sections(name, fn):
    doc = inspect.getdoc(fn) or ""
    sections = ("Parameters", "Returns", "References", "Examples") if inspect.signature(fn).parameters else \
        ("Returns", "References", "Examples")
    missing = [s for s in sections if f"{s}\n{'-' * len(s)}" not in doc]
    assert not missing, f"{name} lacks {missing}"
    assert ">>> " in doc.split("Examples\n--------")[1], name   # the example runs as a doctest


def test_every_kind_documents_each_option_and_its_example_is_a_valid_spec_entry():
    from emoalign.spec.load import parse_spec

    head = ("study: {stimuli: s.parquet, humans: h.parquet, groups: {vlm: [gemma3], fer: [mobilevit], "
            "fer_va: [mobilevit]}}\nanalyses:\n")
    for name, entry in KINDS.entries().items():
        doc = entry.options.__doc__
        params = doc.split("Parameters\n----------\n")[1].split("\n\n")[0]
        documented = re.findall(r"(?m)^(\w+) : ", params)
        assert documented == list(entry.options.model_fields), name
        assert "References\n----------\n" in doc, name
        example = textwrap.dedent(doc.split("Examples\n--------\n")[1].split("::\n", 1)[1])
        loaded = parse_spec(head + textwrap.indent(example, "  "))
        assert [a.kind for a in loaded.spec.analyses] == [name]


def _block(text: str, marker: str) -> str:
    body = text.split(f"<!-- example: {marker} -->", 1)[1].split("<!-- /example -->", 1)[0]
    return body.split("```python\n", 1)[1].rsplit("```", 1)[0]


def test_architecture_worked_example_adds_a_kind_and_a_section_in_one_file_each(tmp_path):
    """The code of docs/architecture.md, saved as one file each, is a kind of specs, analyze and the report."""
    from emoalign.analysis.engine import run_spec
    from emoalign.report import sections as S
    from emoalign.report.results import Results
    from emoalign.report.sections.base import SECTIONS

    text = (DOCS / "architecture.md").read_text()
    kind_file = tmp_path / "quantile_error.py"
    kind_file.write_text(_block(text, "add-a-kind"))
    section_code = text.split("`python/emoalign/report/sections/quantile_error.py`:", 1)[1]
    section_file = tmp_path / "quantile_error_section.py"
    section_file.write_text(section_code.split("```python\n", 1)[1].split("```", 1)[0])
    try:
        for f in (kind_file, section_file):
            spec = importlib.util.spec_from_file_location(f"docs_example_{f.stem}", f)
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
        info = write_study(tmp_path / "study", n_ids=6, n_raters=12, per_rater=12)
        spec_file = info["root"] / "q.yaml"
        spec_file.write_text(SPEC.split("analyses:")[0] + "analyses:\n"
                             "  - {id: median_error, kind: quantile_error, raters: [vlm, fer], dimension: valence}\n"
                             "  - {id: no_dimension, kind: quantile_error, raters: [vlm]}\n")
        rep = run_spec(spec_file, tmp_path / "results")
        bad = next(o for o in rep.outcomes if o.id == "no_dimension")
        assert bad.status == "failed" and "quantile_error needs a dimension" in bad.error   # its own check, before R
        table = pd.read_parquet(tmp_path / "results" / "median_error.parquet").set_index("rater")
        stim, humans = pd.read_parquet(info["root"] / "stimuli.parquet"), pd.read_parquet(info["root"] / "humans.parquet")
        human = humans.groupby("image_id")["valence"].mean()
        for rater in ("gemma3", "fer_a"):
            m = pd.read_parquet(info["root"] / "runs" / rater / "ratings.parquet").set_index("image_id")["valence"]
            m = m[m.index.isin(stim["image_id"])]
            expected = np.median((m - human.reindex(m.index)).abs().dropna())
            assert table.loc[rater, "estimate"] == pytest.approx(expected, rel=1e-12)
        md = S.other_analyses(Results.load(tmp_path / "results"))
        assert "quantile of |machine − human mean| per rater" in md and "tbl-median-error" in md
        assert "A quantile of the absolute error of each machine rater" in md   # the kind's description
    finally:
        KINDS.remove("quantile_error")
        SECTIONS.remove("quantile_error")
