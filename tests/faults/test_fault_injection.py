"""Injection catalogue: spec strings that would run code in R are refused before R starts.

Every attempt below is a formula (or a name that reaches R) a hostile colleague could put in a
shared spec. Each must be refused by the grammar (unit level), by `emoalign spec check` and
`emoalign analyze` with the YAML line (CLI level, R never started, no side effect), and by the
analysis kinds themselves when a spec is built in code. A positive control shows that R really
would run the reported exploit if it reached it, so these tests can fail.
"""

from __future__ import annotations

import textwrap

import pytest

from cli_runner import run_cli
from emoalign.formula import PURE_FUNCTIONS, FormulaError, parse_formula

CANARY = "/tmp/emoalign-canary-{}"

#: (what it tries, formula); {c} is a canary path that a successful injection would create
INJECTIONS = [
    ("system() inside I() (the reported exploit)", 'rating ~ rater_type + I(0*system("touch {c}"))'),
    ("system() as a term", 'rating ~ system("touch {c}")'),
    ("system2()", "rating ~ x + system2('touch', '{c}')"),
    ("shell via pipe()", 'rating ~ x + I(0*nchar(readLines(pipe("touch {c}"))))'),
    ("file write with writeLines()", 'rating ~ x + I(0*length(writeLines("x", "{c}")))'),
    ("file write with cat(file=)", 'rating ~ x + I(0*cat("x", file = "{c}"))'),
    ("file.create()", 'rating ~ x + I(0*file.create("{c}"))'),
    ("saveRDS()", 'rating ~ x + I(0*saveRDS(1, "{c}"))'),
    ("unlink()", 'rating ~ x + I(0*unlink("/tmp"))'),
    ("eval(parse(text=))", 'rating ~ x + I(0*eval(parse(text = "system(\'touch {c}\')")))'),
    ("eval(str2lang())", 'rating ~ x + eval(str2lang("system(\'touch {c}\')"))'),
    ("evalq()", "rating ~ x + evalq(system('touch {c}'))"),
    ("do.call() with a string", 'rating ~ x + I(0*do.call("system", list("touch {c}")))'),
    ("match.fun()", 'rating ~ x + I(0*match.fun("system")("touch {c}"))'),
    ("get()", 'rating ~ x + I(get("system")("touch {c}"))'),
    ("backtick-quoted function", "rating ~ x + `system`('touch {c}')"),
    ("backtick-quoted name", "rating ~ `rater_type`"),
    ("backticks around an operator", "rating ~ `+`(x, y)"),
    ("Sys.setenv()", 'rating ~ x + I(0*Sys.setenv(R_HOME = "/tmp"))'),
    ("Sys.setenv() without strings", "rating ~ x + Sys.setenv(x)"),
    ("base::system", "rating ~ x + I(0*base::system(x))"),
    ("base:::system", "rating ~ x + I(0*base:::system(x))"),
    ("utils::download.file", "rating ~ x + utils::download.file(x, y)"),
    ("$ element access", "rating ~ x + I(0*environment()$system(x))"),
    ("$ on a column", "rating ~ x$y"),
    ("@ slot access", "rating ~ x@y"),
    ("double-quoted string", 'rating ~ x + "y"'),
    ("single-quoted string", "rating ~ x + 'y'"),
    ("raw string", 'rating ~ x + r"(y)"'),
    ("second statement after ;", "rating ~ x; system(y)"),
    ("second statement after a newline", "rating ~ x\nsystem(y)"),
    ("assignment <-", "rating ~ x + I(y <- system(z))"),
    ("assignment ->", "rating ~ x + I(system(z) -> y)"),
    ("assignment =", "rating ~ x + I(y = 1)"),
    ("<<- into the global environment", "rating ~ x + I(system <<- q)"),
    ("function definition", "rating ~ x + I((function(z) z)(y))"),
    ("lambda \\(x)", "rating ~ x + I((\\(z) z)(y))"),
    ("code block {}", "rating ~ x + I({system(y)})"),
    ("indexing []", "rating ~ x + I(y[1])"),
    ("indexing [[]]", "rating ~ x + I(y[[1]])"),
    ("custom %op%", "rating ~ x + y %o% z"),
    ("comparison", "rating ~ x + I(y == 1)"),
    ("logical operators", "rating ~ x + I(!y & z)"),
    ("call of a parenthesised name", "rating ~ x + (system)(y)"),
    ("juxtaposed call name (y)", "rating ~ x + system (y)"),
    ("R comment hiding the rest", "rating ~ x # + I(system('touch {c}'))"),
    ("library()", "rating ~ x + library(y)"),
    ("source()", "rating ~ x + I(source(y))"),
    ("q() / quit()", "rating ~ x + I(q())"),
    (".Internal", "rating ~ x + .Internal(y)"),
    ("reserved word TRUE", "rating ~ x + TRUE"),
    ("'.' expands to every column", "rating ~ ."),
    ("non-ASCII look-alike", "rating ~ x + sуstem(y)"),
    ("hex number", "rating ~ x + I(0x1F)"),
    ("integer suffix", "rating ~ x + I(1L)"),
    ("question mark help", "rating ~ x + ?system"),
]


def _formula(text: str) -> str:
    return text.replace("{c}", CANARY.format("unit"))


def test_catalogue_covers_every_attempt_the_issue_names():
    needs = ["system", "writeLines", "eval(parse", "`", "Sys.setenv", "::", ":::", "$", "@", '"', "'"]
    joined = "\n".join(f for _, f in INJECTIONS)
    assert all(n in joined for n in needs) and len(INJECTIONS) >= 50


@pytest.mark.parametrize("what,formula", INJECTIONS, ids=[w for w, _ in INJECTIONS])
def test_grammar_refuses(what, formula):
    with pytest.raises(FormulaError) as exc:
        parse_formula(_formula(formula))
    assert exc.value.column is None or 1 <= exc.value.column <= len(_formula(formula)) + 1
    assert "formula" in str(exc.value) and "hint:" in str(exc.value)


ALLOWED = [
    "rating ~ rater_type * emotion + (1|image_id)",
    "rating ~ rater_type * (race + gender) + (1 | image_id)",
    "rating ~ 1 + emotion + (1|rater_id) + (1|image_id)",
    "rating ~ 0 + emotion",
    "rating ~ emotion - 1 + (1 + emotion || rater_id)",
    "log(rating) ~ I(n_trials^2) + poly(n_trials, 2) + scale(n_trials) + (1|image_id/rater)",
    "sqrt(rating) ~ (race + gender + emotion)^2 + offset(log1p(n_trials)) + factor(race):emotion",
    "rating ~ race %in% gender + exp(-n_trials / 2.5e1) + abs(n_trials - 1)",
]


@pytest.mark.parametrize("formula", ALLOWED)
def test_allowed_formulas_parse(formula):
    assert parse_formula(formula).variables


@pytest.mark.r
def test_variables_equal_rs_all_vars():
    """The grammar's variables are exactly the names R would look up in the data (R's all.vars)."""
    from emoalign.analysis.rbridge import get_r, r_available

    if not r_available():
        pytest.skip("R is not available")
    r = get_r()
    for f in ALLOWED:  # allowed formulas hold no quotes, so they can be pasted into R code
        assert list(parse_formula(f).variables) == r.eval(f"all.vars(stats::as.formula('{f}'))"), f


HEAD = """\
study:
  stimuli: stimuli.parquet
  humans: humans.parquet
  machines: [runs/*/ratings.parquet]
  groups: {vlm: [gemma3]}
analyses:
"""

FIELDS = {
    "lmm formula": ("""\
  - id: inj
    kind: lmm
    raters: [vlm]
    dimension: valence
    formula: 'rating ~ rater_type + I(0*system("touch {c}"))'
""", 11, "formula"),
    "variance_components formula": ("""\
  - id: inj
    kind: variance_components
    dimension: valence
    formula: 'rating ~ 1 + (1|rater_id) + I(0*system("touch {c}"))'
""", 10, "formula"),
    "variance_components fixed": ("""\
  - id: inj
    kind: variance_components
    dimension: valence
    fixed: ['emotion + I(0*system("touch {c}"))']
""", 10, "fixed"),
    "lmm contrast": ("""\
  - id: inj
    kind: lmm
    raters: [vlm]
    dimension: valence
    formula: rating ~ rater_type * emotion + (1|image_id)
    contrast: 'system("touch {c}")'
""", 12, "contrast"),
    "lmm contrast_by": ("""\
  - id: inj
    kind: lmm
    raters: [vlm]
    dimension: valence
    formula: rating ~ rater_type * emotion + (1|image_id)
    contrast: rater_type
    contrast_by: [emotion, "`x`"]
""", 13, "contrast_by"),
}


@pytest.fixture
def no_r(monkeypatch):
    import emoalign.analysis.rbridge as rb

    monkeypatch.setattr(rb, "get_r", lambda: (_ for _ in ()).throw(AssertionError("R must not start")))


@pytest.mark.parametrize("field", list(FIELDS))
def test_spec_check_names_the_line_and_starts_no_r(field, results_study, tmp_path, capsys, no_r):
    body, line, name = FIELDS[field]
    canary = tmp_path / "canary"
    spec = tmp_path / "spec.yaml"
    spec.write_text(HEAD + body.replace("{c}", str(canary)))
    for args in (["spec", "check", spec, "--no-data"], ["spec", "check", spec, "--data", results_study["root"]],
                 ["analyze", spec, "--data", results_study["root"], "--out", tmp_path / "results"]):
        code, out, err = run_cli(args, capsys)
        assert code == 2, (args, out, err)
        assert f"spec.yaml:{line}: analysis 'inj', field '{name}'" in err, err
        assert "Traceback" not in err and not canary.exists() and not (tmp_path / "results").exists()


def test_kinds_refuse_malicious_formulas_built_in_code(results_study):
    """Defence in depth: a spec built in Python (no YAML load) still never reaches R."""
    from emoalign.analysis.engine import load_study
    from emoalign.analysis.kinds.lmm import LmmOptions
    from emoalign.analysis.kinds.lmm import run as run_lmm
    from emoalign.analysis.kinds.variance_components import VarianceComponentsOptions
    from emoalign.analysis.kinds.variance_components import run as run_vc
    from emoalign.spec.load import load_spec

    class NoR:
        def call(self, *a, **k):
            raise AssertionError("R was called")

    study, _, _ = load_study(load_spec(results_study["spec"]))
    bad = 'rating ~ rater_type + I(0*system("touch /tmp/emoalign-canary-kind"))'
    with pytest.raises(FormulaError, match="strings are not allowed"):
        run_lmm(LmmOptions(id="x", formula=bad, raters="gemma3", dimension="valence"), study, NoR())
    with pytest.raises(FormulaError, match="function 'system' is not allowed"):
        run_vc(VarianceComponentsOptions(id="y", dimension="valence", fixed=["emotion + system(emotion)"]), study, NoR())


@pytest.mark.r
def test_positive_control_r_would_run_the_exploit(results_study, tmp_path):
    """Without the grammar, R runs the reported exploit: the guard above is what stops it."""
    from emoalign.analysis.engine import load_study
    from emoalign.analysis.rbridge import get_r, r_available
    from emoalign.spec.load import load_spec

    if not r_available():
        pytest.skip("R is not available")
    study, _, _ = load_study(load_spec(results_study["spec"]))
    frame = study.comparison_frame("valence", ["gemma3"])[["rating", "rater_type", "image_id"]]
    canary = tmp_path / "canary"
    from emoalign.analysis.rbridge import RCallError

    with pytest.raises(RCallError):  # the shell command runs while R builds the model frame, then the fit fails
        get_r().call("fit_lmm", frame, formula=f'rating ~ rater_type + I(0*system("touch {canary}")) + (1|image_id)')
    assert canary.exists()


def test_pure_function_list_is_short_and_pure():
    assert set(PURE_FUNCTIONS) == {"I", "log", "log2", "log10", "log1p", "exp", "sqrt", "abs", "scale", "poly",
                                   "factor", "offset"}


def test_error_names_column_and_reason():
    with pytest.raises(FormulaError) as exc:
        parse_formula('rating ~ rater_type + I(0*system("x"))')
    assert exc.value.column == 34 and exc.value.reason == "strings are not allowed"
    assert textwrap.dedent(str(exc.value)).startswith("strings are not allowed at column 34 of formula")
