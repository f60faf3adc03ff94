"""The allow-listed grammar of model formulas (R / lme4) that a spec may send to R.

A spec is shared like a data file, so a formula in it must never be able to run code when R
evaluates it (``rating ~ x + I(0*system("..."))`` would). Every formula is therefore parsed here,
before R starts, into this grammar; anything outside it is an error that names the column of the
offending character:

* ``response ~ terms`` with exactly one ``~`` and a response;
* names: syntactic R names (``[A-Za-z.][A-Za-z0-9._]*``, not a reserved word); the caller checks
  that every name is a column of the frame the analysis uses (:attr:`ParsedFormula.variables`);
* operators ``+ - * / : ^ ( )``, ``%in%`` (nesting), and ``|`` / ``||`` inside parentheses
  (lme4 random-effect terms such as ``(1 | image_id)`` or ``(1 + x || rater_id)``);
* numbers: ``0`` and ``1`` as terms (intercept), a positive integer after ``^`` (``(a + b)^2``);
  any plain number inside a function call (``I(x^2)``, ``poly(x, 2)``);
* calls of the pure functions in :data:`PURE_FUNCTIONS` only, with positional arguments built from
  names, numbers, ``+ - * / ^``, parentheses and further allowed calls.

Strings, backticks, ``$``, ``@``, ``::``, ``:::``, ``[``, ``{``, ``;``, ``=``, ``<-``, comparison and
logical operators, and calls of any other function (``system``, ``eval``, ``parse``, ``Sys.setenv``,
``file``, ...) are rejected, so what reaches R can only name data columns and apply arithmetic.

References
----------
Chambers, J. M., & Hastie, T. J. (1992). *Statistical Models in S*, ch. 2 (formula operators).
R Core Team. *R Language Definition*, sections 10.3 (tokens) and 10.4.2 (operator precedence).
Bates, D., Maechler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models using
lme4. *Journal of Statistical Software*, 67(1), section 2.1 (random-effect terms).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from emoalign.errors import EmoalignError

#: functions a formula may call: pure transformations of their arguments (no I/O, no evaluation of text)
PURE_FUNCTIONS: dict[str, str] = {
    "I": "arithmetic as is, e.g. I(x^2)",
    "log": "natural logarithm", "log2": "base-2 logarithm", "log10": "base-10 logarithm",
    "log1p": "log(1 + x)", "exp": "exponential", "sqrt": "square root", "abs": "absolute value",
    "scale": "centre and scale to unit SD", "poly": "orthogonal polynomial, e.g. poly(x, 2)",
    "factor": "treat as a factor", "offset": "offset term with coefficient 1",
}

#: R's reserved words (R Language Definition 10.3.3): never valid as a column name in a formula
RESERVED = frozenset({"if", "else", "repeat", "while", "function", "for", "next", "break", "in", "TRUE", "FALSE",
                      "NULL", "Inf", "NaN", "NA", "NA_integer_", "NA_real_", "NA_character_", "NA_complex_"})

_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\n]+)
  | (?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z][A-Za-z0-9._]*|\.(?![0-9])[A-Za-z0-9._]*)
  | (?P<op>\|\||%in%|[~+\-*/:^|(),])
""", re.VERBOSE)

#: why a character outside the grammar is refused
_REFUSED = [
    ("::", "'::' / ':::' (package access) is not allowed"),
    ('"', "strings are not allowed"), ("'", "strings are not allowed"),
    ("`", "backtick-quoted names are not allowed (rename the column to letters, digits, '.' and '_')"),
    ("$", "'$' (element access) is not allowed"), ("@", "'@' (slot access) is not allowed"),
    ("[", "'[' (indexing) is not allowed"), ("]", "']' is not allowed"),
    ("{", "'{' (an R code block) is not allowed"), ("}", "'}' is not allowed"),
    (";", "';' (a second R statement) is not allowed"),
    ("<-", "'<-' (assignment) is not allowed"),
    ("==", "comparisons are not allowed"), ("=", "'=' (assignment or a named argument) is not allowed"),
    ("%", "'%' operators other than %in% are not allowed"),
    ("#", "'#' (an R comment) is not allowed"), ("\\", "'\\' is not allowed"),
    ("!", "'!' (logical not) is not allowed"), ("&", "'&' (logical and) is not allowed"),
    ("<", "comparisons are not allowed"), (">", "comparisons are not allowed"),
    ("?", "'?' is not allowed"), ("_", "a name cannot start with '_'"),
]

# binary operators: precedence (R Language Definition 10.4.2), higher binds tighter
_BINARY = {"|": 2, "||": 2, "+": 3, "-": 3, "*": 4, "/": 4, "%in%": 5, ":": 6, "^": 8}
_UNARY_PREC = 7
_FORMULA_OPS = {"+", "-", "*", "/", ":", "%in%", "^", "|", "||"}
_ARITH_OPS = {"+", "-", "*", "/", "^"}


class FormulaError(EmoalignError):
    """A formula outside the allowed grammar. ``reason`` says why, ``column`` is 1-based."""

    def __init__(self, reason: str, text: str, column: int | None):
        self.reason, self.text, self.column = reason, text, column
        where = f" at column {column}" if column else ""
        super().__init__(f"{reason}{where} of formula {text!r}",
                         hint="formulas may use column names, ~ + - * / : ^ %in% ( ), | and || in random-effect "
                              f"terms, 0/1, and the functions {', '.join(PURE_FUNCTIONS)}")


@dataclass(frozen=True)
class Token:
    kind: str  # "num", "name", "op", "end"
    text: str
    pos: int  # 0-based offset


@dataclass(frozen=True)
class ParsedFormula:
    """A formula that passed the grammar: its text, variables (in order of first use) and functions."""

    text: str
    variables: tuple[str, ...]
    response: tuple[str, ...]
    functions: tuple[str, ...] = field(default=())


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; a character outside the grammar raises :class:`FormulaError`."""
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or (m.lastgroup == "op" and text.startswith("::", pos)):
            rest = text[pos:]
            reason = next((why for lead, why in _REFUSED if rest.startswith(lead)), None)
            if rest.startswith(">") and text[pos - 1:pos] == "-":
                reason, pos = "'->' (assignment) is not allowed", pos - 1
            if reason is None:
                ch = text[pos]
                reason = (f"non-ASCII character {ch!r} is not allowed" if not ch.isascii()
                          else f"character {ch!r} is not allowed")
            raise FormulaError(reason, text, pos + 1)
        if m.lastgroup != "ws":
            out.append(Token(m.lastgroup, m.group(), pos))
        pos = m.end()
    out.append(Token("end", "", len(text)))
    return out


class _Parser:
    """Recursive-descent (precedence-climbing) parser that only validates and collects names."""

    def __init__(self, text: str):
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.names: list[str] = []
        self.functions: list[str] = []

    # -- helpers ---------------------------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.i]

    def take(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def fail(self, reason: str, tok: Token) -> FormulaError:
        return FormulaError(reason, self.text, tok.pos + 1)

    def expect(self, text: str, opened: Token) -> None:
        tok = self.peek()
        if tok.text != text:
            if tok.kind == "end":
                raise self.fail(f"unbalanced '{opened.text}' (missing '{text}')", opened)
            raise self.fail(f"expected '{text}' but found '{tok.text}'", tok)
        self.take()

    # -- grammar ---------------------------------------------------------------------------
    def formula(self) -> ParsedFormula:
        tildes = [t for t in self.tokens if t.text == "~"]
        if len(tildes) != 1:
            where = tildes[1] if len(tildes) > 1 else self.tokens[0]
            raise self.fail("a formula needs exactly one '~' (response ~ terms)", where)
        if self.peek().text == "~":
            raise self.fail("a formula needs a response before '~', e.g. rating ~ terms", self.peek())
        self.expr(0, "arith", bars=False)
        response = tuple(dict.fromkeys(self.names))
        self.expect("~", self.peek())
        self.expr(0, "formula", bars=False)
        tok = self.peek()
        if tok.kind != "end":
            raise self.fail(f"unexpected '{tok.text}'" + (" (unbalanced ')')" if tok.text == ")" else ""), tok)
        return ParsedFormula(self.text, tuple(dict.fromkeys(self.names)), response, tuple(dict.fromkeys(self.functions)))

    def expr(self, min_prec: int, ctx: str, bars: bool) -> None:
        """Parse an expression whose binary operators bind at least ``min_prec``."""
        self.unary(ctx, bars)
        used_bar = False
        while True:
            tok = self.peek()
            if tok.kind in ("name", "num") or tok.text == "(":
                raise self.fail(f"missing an operator before '{tok.text}'", tok)
            prec = _BINARY.get(tok.text)
            if tok.kind != "op" or prec is None or prec < min_prec:
                return
            if tok.text not in (_FORMULA_OPS if ctx == "formula" else _ARITH_OPS):
                raise self.fail(f"operator '{tok.text}' is not allowed in a response or function argument "
                                "(use + - * / ^ there)", tok)
            if tok.text in ("|", "||") and not bars:
                raise self.fail("a random-effect term holds one '|'" if used_bar else
                                "a random-effect term needs its own parentheses, e.g. (1 | image_id)", tok)
            self.take()
            if self.peek().kind == "end" or self.peek().text in (")", ",", "~"):
                raise self.fail(f"the operator '{tok.text}' is missing its term", tok)
            if tok.text == "^":
                self.exponent(ctx)
                continue
            # the right side of a bar is the grouping factor; no further bar inside it
            self.expr(prec + 1, ctx, bars=bars and tok.text not in ("|", "||"))
            if tok.text in ("|", "||"):
                bars, used_bar = False, True

    def exponent(self, ctx: str) -> None:
        if ctx == "formula":
            tok = self.take()
            if tok.kind != "num" or not re.fullmatch(r"[1-9]\d*", tok.text):
                raise self.fail("'^' in a formula takes a positive whole number, e.g. (a + b)^2", tok)
            return
        self.expr(_BINARY["^"], ctx, bars=False)  # right-associative

    def unary(self, ctx: str, bars: bool) -> None:
        tok = self.peek()
        if tok.text == "-" or (tok.text == "+" and ctx == "arith"):
            self.take()
            if self.peek().kind == "end" or (self.peek().kind == "op" and self.peek().text != "("):
                raise self.fail(f"the operator '{tok.text}' is missing its term", tok)
            self.expr(_UNARY_PREC, ctx, bars=False)
            return
        self.primary(ctx, bars)

    def primary(self, ctx: str, bars: bool) -> None:
        tok = self.take()
        if tok.kind == "name":
            if self.peek().text == "(":
                self.call(tok)
                return
            if tok.text in RESERVED or tok.text.startswith("..") or tok.text == ".":
                why = "'.' (all other columns) is not allowed; name the columns" if tok.text == "." else \
                    f"'{tok.text}' is an R reserved word, not a column name"
                raise self.fail(why, tok)
            self.names.append(tok.text)
            return
        if tok.kind == "num":
            if ctx == "formula" and tok.text not in ("0", "1"):
                raise self.fail(f"a number in a formula term must be 0 or 1 (intercept), not {tok.text}; "
                                "use I(...) for arithmetic", tok)
            return
        if tok.text == "(":
            self.expr(0, ctx, bars=(ctx == "formula"))
            self.expect(")", tok)
            return
        if tok.kind == "end":
            raise self.fail("the formula ends where a term is expected", tok)
        if tok.text == ")":
            raise self.fail("unbalanced ')'", tok)
        raise self.fail(f"the operator '{tok.text}' is missing its term", tok)

    def call(self, name: Token) -> None:
        if name.text not in PURE_FUNCTIONS:
            raise self.fail(f"function '{name.text}' is not allowed in a formula "
                            f"(allowed: {', '.join(PURE_FUNCTIONS)})", name)
        self.functions.append(name.text)
        opened = self.take()  # "("
        if self.peek().text == ")":
            raise self.fail(f"{name.text}() needs an argument", self.peek())
        while True:
            self.expr(0, "arith", bars=False)
            if self.peek().text == ",":
                self.take()
                continue
            self.expect(")", opened)
            return


def parse_formula(text: str) -> ParsedFormula:
    """Parse ``text`` into the allowed grammar (see the module docstring) or raise :class:`FormulaError`."""
    if not isinstance(text, str) or not text.strip():
        raise FormulaError("the formula is empty", str(text or ""), None)
    return _Parser(text).formula()


def formula_variables(text: str) -> list[str]:
    """Column names a formula uses, in order of first use (function names excluded); raises on bad grammar."""
    return list(parse_formula(text).variables)


def formula_syntax_problem(text: str) -> str | None:
    """``None`` when ``text`` is in the grammar, else the reason with its column."""
    try:
        parse_formula(text)
    except FormulaError as exc:
        return exc.reason + (f" (column {exc.column})" if exc.column else "")
    return None


def is_name(text: str) -> bool:
    """True for a syntactic R name that a formula could use as a column (``emotion``, ``rater_type``)."""
    return bool(re.fullmatch(r"[A-Za-z][A-Za-z0-9._]*|\.[A-Za-z_.][A-Za-z0-9._]*", str(text))) \
        and str(text) not in RESERVED and not str(text).startswith("..")
