"""``data.filter`` as one parsed expression: checked once, rendered for every engine.

The filter is written in DuckDB's SQL dialect. ``parse_filter`` reads it with sqlglot and
keeps it only if it is one expression built from an allow-list (comparisons, boolean logic,
arithmetic, IN lists, BETWEEN, LIKE, IS NULL, CASE, casts and the plain functions of
``ALLOWED_FUNCTIONS``) over the table's own columns. No subquery, table, table function,
file, setting or second statement can be named, so the sandbox holds on an engine that
has no lock of its own. ``render_filter`` writes the checked expression in an engine's
dialect, with every column quoted as the table spells it.

sqlglot is imported inside the functions: it takes 0.1-0.2 s to import, and only a
spec with a filter pays for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

from causalcli.data.sql import did_you_mean
from causalcli.errors import SpecError

if TYPE_CHECKING:  # pragma: no cover
    from sqlglot import exp

# the engines a filter is rendered for: causalcli's name -> sqlglot's dialect
DIALECTS = {"duckdb": "duckdb", "spark": "spark", "postgres": "postgres"}

# sqlglot expression classes a filter may hold besides columns and functions
ALLOWED_OPERATORS = (
    "And", "Or", "Not", "Paren",
    "EQ", "NEQ", "GT", "GTE", "LT", "LTE", "NullSafeEQ", "NullSafeNEQ",
    "Is", "In", "Between", "Like", "ILike", "Escape",
    "Add", "Sub", "Mul", "Div", "IntDiv", "Mod", "Neg", "Pow", "DPipe",
    "Case", "If", "Cast", "TryCast", "DataType", "DataTypeParam", "Interval",
    "Literal", "Boolean", "Null",
)

# functions a filter may call, as the docs list them (name as written -> sqlglot class or None for a
# name sqlglot keeps as written): pure functions of their arguments, nothing read from outside the row
ALLOWED_FUNCTIONS = {
    "coalesce": "Coalesce", "nullif": "Nullif", "if": "If",
    "lower": "Lower", "upper": "Upper", "length": "Length", "substring": "Substring", "trim": "Trim",
    "concat": "Concat", "replace": "Replace", "left": "Left", "right": "Right", "strpos": "StrPosition",
    "starts_with": "StartsWith", "ends_with": "EndsWith", "contains": "Contains",
    "regexp_matches": "RegexpLike",
    "abs": "Abs", "round": "Round", "floor": "Floor", "ceil": "Ceil", "greatest": "Greatest",
    "least": "Least", "sqrt": "Sqrt", "ln": "Ln", "log": "Log", "log10": "Log", "log2": "Log", "exp": "Exp",
    "power": "Pow", "pow": "Pow", "sign": "Sign",
    "isnan": "IsNan", "isinf": "IsInf", "isfinite": None,
    "date": "Date", "make_date": "DateFromParts", "strftime": "TimeToStr", "strptime": "StrToTime",
    "date_trunc": "TimestampTrunc", "date_part": None, "extract": "Extract", "date_diff": "DateDiff",
    "date_add": "DateAdd", "year": "Year", "month": "Month", "day": "Day", "dayofweek": "DayOfWeek",
}

# names that read files, tables, settings or the environment, or change state: the refusal says so
# (the wording only: the allow-list above decides what is refused)
_READS_OUTSIDE = ("read_", "parquet_", "glob", "getenv", "current_setting", "pg_", "sniff_csv", "query",
                  "duckdb_", "pragma_", "nextval", "currval", "setseed", "system", "load", "install",
                  "iceberg_", "delta_", "sqlite_", "postgres_", "mysql_", "json_execute", "range",
                  "generate_series", "unnest", "file", "http")

# where a bare word (sqlglot's Var) is a part of a date or an interval, not a name
_VAR_PARENTS = ("Interval", "Extract", "TimestampTrunc", "DateTrunc", "DateDiff", "DateAdd")

# the kinds of node that make a value, never a condition: refused as the whole filter
_VALUE_ROOTS = ("Add", "Sub", "Mul", "Div", "IntDiv", "Mod", "Neg", "Pow", "DPipe", "Literal")

@dataclass(frozen=True)
class Where:
    """The spec text being checked, as refusals name it: its file, its key, and the words for it."""

    file: str | None
    key: str = "data.filter"
    the: str = "the filter"
    a: str = "a filter"
    one: str = "one condition"
    what: str = "a condition over them"
    kind: str = "a condition"
    rule: str = "a filter is one condition"

    @property
    def only(self) -> str:
        return f"{self.a} can read only the data's own columns"


def derived_column(file: str | None, name: str) -> Where:
    """Where an expression of ``data.derive`` stands: its key names the new column."""
    return Where(file, f"data.derive.{name}", "the expression", "an expression", "a single expression",
                 "an expression over them", "an expression", "a derived column is one expression")


def parse_filter(text: str, columns: Iterable[str], display: str | None) -> "exp.Expression":
    """``text`` (DuckDB's dialect) as one checked condition over ``columns``; every refusal is a SpecError.

    Columns are matched as DuckDB does (case-insensitively) and come back quoted, spelled as in
    ``columns``: the rendering names the same columns on a case-sensitive engine.
    """
    return parse_expression(text, columns, Where(display), condition=True)


def parse_expression(text: str, columns: Iterable[str], where: Where, condition: bool = False) -> "exp.Expression":
    """``text`` as one checked expression over ``columns`` (a value, or with ``condition`` true or false)."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    dialect = sqlglot.Dialect.get_or_raise("duckdb")
    try:
        tokens = dialect.tokenize(text)
    except TokenError as error:
        raise _refuse(f"{where.the} cannot be read: {_first_line(error)}", where) from None
    _check_tokens(tokens, where)
    try:
        statements = [s for s in dialect.parser().parse(tokens, text) if s is not None]
    except ParseError as error:
        raise _refuse(_syntax_message(error, text, where), where) from None
    example = "x1 > 0" if condition else "x1 * x1"
    if not statements:
        raise _refuse(f"{where.the} is empty; write {where.what.replace('them', 'the columns')} (e.g. {example})",
                      where)
    if len(statements) > 1:
        raise _refuse(f"{where.the} is {where.one}: no second statement", where)
    expression = statements[0]
    if not isinstance(expression, exp.Condition) or isinstance(expression, (exp.Query, exp.Subquery)):
        found = type(expression).__name__.upper()
        raise _refuse(f"{where.the} is a {found} statement, not {where.kind}; {where.only}: "
                      f"write {where.what} (e.g. {example})", where)
    if condition and type(expression).__name__ in _VALUE_ROOTS:
        raise _refuse("the filter gives a value, not true or false; compare it (e.g. x1 > 0)", where)
    by_name = _column_lookup(columns)
    for node in list(expression.walk()):
        _check_node(node, text, tokens, by_name, where)
    return _as_duckdb_reads(expression, where)


def render_filter(expression: "exp.Expression", dialect: str, where: Where | None = None) -> str:
    """The checked filter (or derived column: ``where``) as SQL text for ``dialect`` ("duckdb", "spark" or
    "postgres")."""
    from sqlglot.dialects.dialect import Dialect

    name = DIALECTS.get(dialect, dialect)  # another Ibis engine: sqlglot's dialect of the same name
    try:
        Dialect.get_or_raise(name)
    except ValueError:
        raise ValueError(f"no filter dialect {dialect!r}; known: {', '.join(DIALECTS)} and sqlglot's") from None
    rendered = _parenthesised(expression).sql(dialect=name, identify=True)
    _check_rendering(expression, rendered, name, where or Where(None))
    return rendered


def _check_rendering(expression: "exp.Expression", rendered: str, dialect: str, where: Where) -> None:
    """The rendering, read back by the engine's dialect, is still one expression over the same columns.

    A second look that does not trust sqlglot's writer: no subquery, table, command or second
    statement may appear in the text the engine runs.
    """
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import ParseError, TokenError

    columns = {c.name for c in expression.find_all(exp.Column)}
    try:
        statements = sqlglot.parse(rendered, read=dialect)
    except (ParseError, TokenError):
        statements = []
    back = statements[0] if len(statements) == 1 else None
    if (back is None or back.find(exp.Query, exp.Subquery, exp.Table, exp.Command, exp.Exists) is not None
            or any(c.table or c.name not in columns for c in back.find_all(exp.Column))):
        raise SpecError(f"{where.the} cannot be written for {dialect} as {where.one} over its columns; "
                        "simplify it", file=where.file, key=where.key)


# ---------------------------------------------------------------- one reading, written without ambiguity


def _as_duckdb_reads(expression: "exp.Expression", where: Where) -> "exp.Expression":
    """The tree regrouped where sqlglot and DuckDB read the same text differently; the rest refused.

    DuckDB (PostgreSQL's grammar) binds IS [NOT] NULL/TRUE/FALSE and IS [NOT] DISTINCT FROM more
    loosely than =, <, > and friends: ``a < b IS NULL`` is ``(a < b) IS NULL`` and
    ``a IS DISTINCT FROM b = c`` is ``a IS DISTINCT FROM (b = c)``; sqlglot reads both the other
    way, and regrouped they read as DuckDB reads them. Where the two could still disagree (a
    comparison of comparisons, % beside another arithmetic operator) the filter must say it with
    parentheses. The user's own parentheses are kept as they are.
    """
    from sqlglot import exp

    holder = exp.Paren(this=expression)
    for node in reversed(list(expression.walk(bfs=False))):  # children first
        if isinstance(node, _comparisons()):
            node.replace(_regrouped(node))
    for node in holder.this.walk():
        _check_grouping(node, where)
    return holder.this.pop()


def _comparisons() -> tuple:
    from sqlglot import exp

    return exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE


def _regrouped(node: "exp.Expression") -> "exp.Expression":
    """One comparison as DuckDB groups it with an IS test on either side (see ``_as_duckdb_reads``)."""
    from sqlglot import exp

    null_safe = (exp.NullSafeEQ, exp.NullSafeNEQ)
    left, right = node.this, node.expression
    is_test = right.this if isinstance(right, exp.Not) and isinstance(right.this, exp.Is) else right
    if isinstance(is_test, (exp.Is, *null_safe)):  # a < (b IS NULL) as sqlglot read it: (a < b) IS NULL
        is_test.set("this", exp.Paren(this=_regrouped(type(node)(this=left, expression=is_test.this))))
        return right
    if isinstance(left, null_safe):  # (a IS DISTINCT FROM b) = c as sqlglot read it: a IS DISTINCT FROM (b = c)
        left.set("expression", exp.Paren(this=_regrouped(type(node)(this=left.expression, expression=right))))
        return left
    return node


def _check_grouping(node: "exp.Expression", where: Where) -> None:
    from sqlglot import exp

    tests = (*_comparisons(), exp.Is, exp.NullSafeEQ, exp.NullSafeNEQ)
    arithmetic = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.IntDiv, exp.Pow)
    operands = [node.this, node.expression] if isinstance(node, exp.Binary) else []
    if isinstance(node, tests) and any(isinstance(side, (*tests, exp.Not)) for side in operands):
        raise _refuse("a comparison or IS test of another one needs parentheses (write (a = b) = c or "
                      "(a < b) IS NULL)", where)
    if isinstance(node, exp.Mod) and (isinstance(node.parent, arithmetic)
                                      or any(isinstance(side, arithmetic) for side in operands)):
        raise _refuse("'%' beside another arithmetic operator needs parentheses (write a + (b % c) or "
                      "(a + b) % c)", where)


def _parenthesised(expression: "exp.Expression") -> "exp.Expression":
    """A copy with every operation inside another in parentheses: no engine's precedence can regroup it."""
    from sqlglot import exp

    copy = expression.copy()
    operations = (exp.Binary, exp.Unary, exp.In, exp.Between)
    for node in list(copy.walk()):
        parent = node.parent
        if (isinstance(node, operations) and not isinstance(node, exp.Paren)
                and isinstance(parent, operations) and not isinstance(parent, (exp.Paren, exp.Escape))
                and not (isinstance(node, exp.Neg) and isinstance(node.this, exp.Literal))):
            wrapper = exp.Paren()
            node.replace(wrapper)
            wrapper.set("this", node)
    return copy


def original_offset(text: str, rendered: str, offset: int) -> int | None:
    """Where in ``text`` the token at ``offset`` of its rendering ``rendered`` came from, or None."""
    import difflib

    import sqlglot
    from sqlglot.errors import TokenError

    dialect = sqlglot.Dialect.get_or_raise("duckdb")
    try:
        written, shown = dialect.tokenize(text), dialect.tokenize(rendered)
    except TokenError:
        return None
    at = next((i for i, t in enumerate(shown) if t.end >= offset), None)
    if at is None:
        return len(text) if offset >= len(rendered) else None
    matcher = difflib.SequenceMatcher(None, [_token_key(t) for t in written], [_token_key(t) for t in shown],
                                      autojunk=False)
    for a, b, size in matcher.get_matching_blocks():
        if b <= at < b + size:
            return written[a + at - b].start
    return None


def missing_column_message(name: str, text: str, columns: Iterable[str]) -> str:
    """'column 'x' not found' with the nearest name, or the columns there are."""
    if f'"{name}"' in text:
        return f"column {name!r} not found: double quotes name a column; text values take single quotes ('{name}')"
    names = list(columns)
    hint = did_you_mean(name, names)
    listed = "" if hint else "; the data has: " + ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    return f"column {name!r} not found{hint}{listed}"


# ---------------------------------------------------------------- the checks


def _refuse(message: str, where: Where) -> SpecError:
    return SpecError(message, file=where.file, key=where.key)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def _check_tokens(tokens: list, where: Where) -> None:
    """No comment and no ';': what a filter says is what the engine runs."""
    from sqlglot.tokens import TokenType

    _BEFORE_NOT = {TokenType.EQ, TokenType.NEQ, TokenType.LT, TokenType.LTE, TokenType.GT, TokenType.GTE,
                   TokenType.NULLSAFE_EQ, TokenType.FROM}  # sqlglot and DuckDB group 'a = NOT b IS NULL' apart
    for token, next_token in zip(tokens, [*tokens[1:], None]):
        if token.comments:
            raise _refuse(f"{where.the} holds a comment (-- or /* */); remove it: {where.rule}", where)
        if token.token_type == TokenType.INTERVAL and next_token is not None and \
                next_token.token_type == TokenType.STRING and not _INTERVAL_TEXT.fullmatch(next_token.text):
            raise _refuse(f"the interval at character {token.start + 1} is not a number and a unit; write it "
                          "like INTERVAL 3 DAY or INTERVAL '3 days'", where)
        if token.token_type in (TokenType.DCOLON, TokenType.ALIAS) and next_token is not None and \
                next_token.token_type == TokenType.IDENTIFIER:  # sqlglot would read only a part of it
            raise _refuse(f"the type at character {next_token.start + 1} is in double quotes; cast to a built-in "
                          "type written without quotes (e.g. CAST(x AS INTEGER))", where)
        if token.token_type in _BEFORE_NOT and next_token is not None and next_token.token_type == TokenType.NOT:
            raise _refuse(f"NOT at character {next_token.start + 1} follows a comparison; put it in parentheses "
                          "(a = (NOT b))", where)
        if token.token_type == TokenType.SEMICOLON:
            raise _refuse(f"syntax error near ';' at character {token.start + 1}: {where.the} is {where.one}, "
                          "with no ';' and no other statement", where)


# what sqlglot reads from an interval's quotes without dropping a part: '3', '3 days', '-1.5 hour'
_INTERVAL_TEXT = re.compile(r"\s*[-+]?\d+(\.\d+)?(\s+[A-Za-z]+)?\s*")


def _syntax_message(error: Exception, text: str, where: Where) -> str:
    """sqlglot's parse error as DuckDB's plain words say it: the token, its character, what is missing."""
    found = (getattr(error, "errors", None) or [{}])[0]
    near = found.get("highlight") or ""
    line, col = found.get("line"), found.get("col")
    if not near.strip() or line is None or col is None:
        example = "x1 > 0 AND region = 'north'" if where.key == "data.filter" else "x1 * x1 + 1"
        return f"{where.the} cannot be read as {where.one}; write it like {example}"
    end = sum(len(part) + 1 for part in text.split("\n")[:line - 1]) + col  # col: the token's last character
    start = end - len(near)
    operator = all(ch in _OPERATOR_CHARACTERS for ch in near)
    while operator and start > 0 and text[start - 1] in _OPERATOR_CHARACTERS:  # '>>' is one operator to DuckDB
        start -= 1
    near = text[start:end]
    if text[end:].strip():
        return f"syntax error near {near!r} at character {start + 1}"
    if operator:
        return f"syntax error near {near!r} at character {start + 1}: the operator has nothing on its right"
    return f"{where.the} ends too early: something is missing after {near!r}"


_OPERATOR_CHARACTERS = "<>=!~+-*/%|&^@"


def _column_lookup(columns: Iterable[str]) -> dict[str, str]:
    """Lower-cased name -> the name as the table spells it (the first of equal names wins, as in DuckDB)."""
    found: dict[str, str] = {}
    for name in columns:
        found.setdefault(name, name)
        found.setdefault(name.lower(), name)
    return found


def _check_node(node: "exp.Expression", text: str, tokens: list, by_name: dict[str, str], where: Where) -> None:
    from sqlglot import exp

    kind = type(node).__name__
    _check_words(node, where)
    if isinstance(node, (exp.Query, exp.Subquery, exp.Exists, exp.Select)):
        raise _refuse(f"a subquery{_at_word(tokens, 'select', 'exists')} is not allowed: {where.only}; "
                      f"write {where.what}", where)
    if isinstance(node, (exp.Table, exp.From, exp.Join)):
        raise _refuse(f"{where.the} names a table; {where.only}", where)
    if isinstance(node, exp.Column):
        _check_column(node, text, by_name, where)
    elif isinstance(node, exp.Identifier):
        if not isinstance(node.parent, exp.Column):
            raise _refuse(f"{node.name!r}{_at_node(node)} is not a column here; {where.only}", where)
    elif isinstance(node, exp.Var):
        if type(node.parent).__name__ not in _VAR_PARENTS:
            raise _refuse(f"{node.name!r} is not a column or a value; {where.only}", where)
    elif isinstance(node, exp.In):
        if node.args.get("query"):
            raise _refuse(f"a subquery{_at_word(tokens, 'select')} is not allowed: {where.only}; "
                          "write IN with a list of values (x IN (1, 2))", where)
        if node.args.get("field") or node.args.get("unnest"):
            raise _refuse(f"IN takes a list of values in parentheses (x IN (1, 2)); {where.only}", where)
    elif isinstance(node, exp.Func) and kind not in ALLOWED_OPERATORS:
        _check_function(node, tokens, where)
    elif kind not in ALLOWED_OPERATORS:
        word = _PANDAS_OPERATORS.get(kind)
        hint = f" (write {word}, as SQL does: (x > 0) {word} (y < 5))" if word in ("AND", "OR") else (
            " (write NOT, as SQL does: NOT (x > 0))" if word else "")
        raise _refuse(f"{_plain_kind(node)} is not allowed in {where.a}{hint}; {where.only}, compared, combined with "
                      "AND/OR/NOT or passed to a plain function", where)


def _check_words(node: "exp.Expression", where: Where) -> None:
    """Text a node holds outside quotes (a date part, a type, a number) is one plain word, never SQL.

    The rendering writes such words as they are: a word that held ')' or a space could change what the
    engine runs (sqlglot keeps ``extract("year) OR (1" FROM d)``'s quoted part as a bare word).
    """
    from sqlglot import exp

    quoted = isinstance(node, exp.Identifier) or (isinstance(node, exp.Literal) and node.is_string)
    for key, value in node.args.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str) and not (quoted and key == "this") and not _PLAIN_WORD.fullmatch(item):
                raise _refuse(f"a date part, type or number in {where.the} is not one plain word (e.g. year, "
                              "INTEGER, 2.5); write it without quotes or spaces", where)
    if isinstance(node, exp.DataType) and node.this == exp.DataType.Type.USERDEFINED:
        raise _refuse(f"cast to a built-in type (INTEGER, DOUBLE, DECIMAL(p, s), VARCHAR, DATE, TIMESTAMP, "
                      f"BOOLEAN), not {node.sql(dialect='duckdb')!r}", where)


_PLAIN_WORD = re.compile(r"[A-Za-z0-9_.+-]*")


def _check_column(node: "exp.Column", text: str, by_name: dict[str, str], where: Where) -> None:
    from sqlglot import exp

    if isinstance(node.this, exp.Star):
        raise _refuse(f"'*' is not allowed in {where.a}; {where.only}: name one", where)
    if node.table or node.args.get("db") or node.args.get("catalog"):
        raise _refuse(f"{node.sql(dialect='duckdb')!r} is not a column; {where.the} sees only the data's columns: "
                      "write a column name alone", where)
    name = node.name
    spelled = by_name.get(name) or by_name.get(name.lower())
    if spelled is None:
        columns = [c for c in dict.fromkeys(by_name.values())]
        raise _refuse(missing_column_message(name, text, columns), where)
    node.set("this", exp.to_identifier(spelled, quoted=True))


def _check_function(node: "exp.Func", tokens: list, where: Where) -> None:
    from sqlglot import exp

    if isinstance(node, exp.Anonymous):
        name, at = node.name, _at_node(node)
        if name.lower() in ALLOWED_FUNCTIONS and ALLOWED_FUNCTIONS[name.lower()] is None:
            return
    else:
        if type(node).__name__ in ALLOWED_FUNCTIONS.values():
            return
        name, at = _written_name(node, tokens)
    lowered = name.lower()
    if lowered.startswith(_READS_OUTSIDE) or isinstance(node, (exp.ReadCSV, exp.ReadParquet)):
        raise _refuse(f"{name!r}{at} reads tables, files or settings, which {where.a} cannot: {where.only}; "
                      f"use {where.what}", where)
    allowed = ", ".join(sorted(ALLOWED_FUNCTIONS))
    if isinstance(node, exp.Anonymous):
        raise _refuse(f"unknown function {name!r}{at}: {where.a} may call {allowed}", where)
    raise _refuse(f"function {name!r}{at} is not allowed in {where.a} (it may call {allowed})", where)


def _written_name(node: "exp.Func", tokens: list) -> tuple[str, str]:
    """The function's name as the filter writes it, and ' at character N' where it does."""
    names = {n.lower() for n in getattr(type(node), "_sql_names", ())} | {node.sql_name().lower()}
    for token in tokens:
        if token.text.lower() in names:
            return token.text, f" at character {token.start + 1}"
    return node.sql_name().lower(), ""


def _at_node(node: "exp.Expression") -> str:
    start = node.meta.get("start") if node.meta else None
    return f" at character {start + 1}" if start is not None else ""


def _at_word(tokens: list, *words: str) -> str:
    for token in tokens:
        if token.text.lower() in words:
            return f" at character {token.start + 1}"
    return ""


_PLAIN_KINDS = {"Placeholder": "a parameter ($1 or ?)", "Parameter": "a parameter", "Star": "'*'",
                "Bracket": "indexing with [ ]", "Dot": "a field access (a.b)", "Lambda": "a lambda (->)",
                "Array": "a list [ ]", "Struct": "a struct { }", "Window": "a window (OVER)", "Tuple": "a tuple",
                "Var": "a bare word", "BitwiseAnd": "'&'", "BitwiseOr": "'|'", "BitwiseNot": "'~'"}
# pandas' way of combining conditions, which SQL writes as words
_PANDAS_OPERATORS = {"BitwiseAnd": "AND", "BitwiseOr": "OR", "BitwiseNot": "NOT"}


def _plain_kind(node: "exp.Expression") -> str:
    return _PLAIN_KINDS.get(type(node).__name__, f"{node.key.upper()!r}")


def _token_key(token: Any) -> tuple[str, str]:
    """What a token is, whatever its quoting: the rendering quotes names and writes keywords in capitals."""
    return token.token_type.name, token.text.lower()
