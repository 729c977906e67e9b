"""The ``--where`` language of ``simsink runs`` (docs/catalog.md), translated
to SQL over the catalog with every name and value bound as a parameter.

This mirrors daemon/catalog/query.cpp, so that ``simsink.runs(where=...)``
selects the same runs as ``simsink runs --where ...``; the tests compare the
two on the same catalog.

    expr       := or
    or         := and ( "or" and )*
    and        := unary ( "and" unary )*
    unary      := "not" unary | "(" or ")" | comparison
    comparison := name op value
    op         := "=" | "==" | "!=" | "<>" | "<" | "<=" | ">" | ">=" | "like"
    value      := number | 'string' | "string" | true | false
"""

from __future__ import annotations

import re

MAX_DEPTH = 100


class QueryError(ValueError):
    """A where expression that cannot be parsed or names nothing queryable."""


_RUN_COLUMNS = {
    "id": ("r.id", True),
    "campaign": ("c.name", False),
    "status": ("r.status", False),
    "host": ("r.host", False),
    "pid": ("r.pid", True),
    "started": ("r.started", True),
    "ended": ("r.ended", True),
}
_SQL_OPS = {"=": " = ", "==": " = ", "!=": " <> ", "<>": " <> ", "<": " < ", "<=": " <= ",
            ">": " > ", ">=": " >= ", "like": " LIKE "}
_PARAM_FIELD = "EXISTS (SELECT 1 FROM params f WHERE f.run_id = r.id AND f.name = ?"
_RESULT_FIELD = "EXISTS (SELECT 1 FROM results f WHERE f.run_id = r.id AND f.name = ?"
_PARAM_PRESENT = "EXISTS (SELECT 1 FROM params f WHERE f.run_id = r.id AND f.name = ?)"
_TYPES_NUMBER = " AND f.type IN ('int', 'float')"
_TYPES_BOOL = " AND f.type = 'bool'"
_TYPES_STRING = " AND f.type = 'str'"

_NAME_START = re.compile(r"[A-Za-z_]")
_NAME_CHARS = re.compile(r"[A-Za-z0-9_.\-]*")
_OP_CHARS = re.compile(r"[=!<>~]+")
_INT64_MAX = 2**63 - 1


def _at(col):
    return f" at column {col}"


class _Tok:
    __slots__ = ("kind", "text", "column", "number")

    def __init__(self, kind, text="", column=0, number=None):
        self.kind, self.text, self.column, self.number = kind, text, column, number


def _keyword(t, word):
    return t.kind == "name" and t.text.lower() == word


def _describe(t):
    if t.kind == "end":
        return "the end of the expression"
    if t.kind == "string":
        return f"the string '{t.text}'"
    return f"'{t.text}'"


def _lex(s):
    out = []
    i = 0
    n = len(s)
    while True:
        while i < n and s[i].isspace():
            i += 1
        if i >= n:
            break
        c = s[i]
        col = i + 1
        if c in "()":
            out.append(_Tok("lparen" if c == "(" else "rparen", c, col))
            i += 1
        elif c in "'\"":
            i += 1
            text = []
            while True:
                if i >= n:
                    raise QueryError(f"unterminated string starting{_at(col)} (missing {c})")
                ch = s[i]
                i += 1
                if ch != c:
                    text.append(ch)
                elif i < n and s[i] == c:
                    text.append(c)
                    i += 1
                else:
                    break
            out.append(_Tok("string", "".join(text), col))
        elif c.isdigit() and c.isascii() or c == "." or (
                c in "-+" and i + 1 < n and (s[i + 1].isascii() and s[i + 1].isdigit()
                                             or s[i + 1] == ".")):
            start = i
            if s[i] in "-+":
                i += 1
            integral = True
            while i < n and "0" <= s[i] <= "9":
                i += 1
            if i < n and s[i] == ".":
                integral = False
                i += 1
                while i < n and "0" <= s[i] <= "9":
                    i += 1
            if i < n and s[i] in "eE":
                integral = False
                i += 1
                if i < n and s[i] in "-+":
                    i += 1
                while i < n and "0" <= s[i] <= "9":
                    i += 1
            i = _NAME_CHARS.match(s, i).end()  # swallow junk to report it
            text = s[start:i]
            digits = text[1:] if text.startswith("+") else text
            value = None
            if integral and re.fullmatch(r"-?[0-9]+", digits):
                v = int(digits)
                if -_INT64_MAX - 1 <= v <= _INT64_MAX:
                    value = v
            if value is None:
                if not re.fullmatch(r"-?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?", digits):
                    raise QueryError(f"malformed number '{text}'{_at(col)}")
                value = float(digits)
            out.append(_Tok("number", text, col, value))
        elif _NAME_START.match(c):
            start = i
            i = _NAME_CHARS.match(s, i + 1).end()
            out.append(_Tok("name", s[start:i], col))
        elif c in "=!<>~":
            start = i
            i = _OP_CHARS.match(s, i).end()
            text = s[start:i]
            if text not in ("=", "==", "!=", "<>", "<", "<=", ">", ">="):
                raise QueryError(f"unknown operator '{text}'{_at(col)} (use = != < <= > >= or like)")
            out.append(_Tok("op", text, col))
        elif c in "&|":
            raise QueryError(f"unexpected '{c}'{_at(col)} (write 'and' / 'or')")
        else:
            raise QueryError(f"unexpected character '{c}'{_at(col)}")
    out.append(_Tok("end", "", n + 1))
    return out


class _Translator:
    def __init__(self, db, text):
        self.db = db
        self.toks = _lex(text)
        self.pos = 0
        self.bindings = []

    def peek(self):
        return self.toks[self.pos]

    def take(self):
        t = self.toks[self.pos]
        if self.pos < len(self.toks) - 1:
            self.pos += 1
        return t

    def translate(self):
        out = []
        self.parse_or(out, 0)
        t = self.peek()
        if t.kind != "end":
            if t.kind == "rparen":
                raise QueryError(f"unbalanced ')'{_at(t.column)}")
            raise QueryError(f"expected 'and' or 'or'{_at(t.column)}, found {_describe(t)}")
        return "".join(out), self.bindings

    def check_depth(self, depth):
        if depth > MAX_DEPTH:
            raise QueryError(f"expression nested too deeply{_at(self.peek().column)} (more than "
                             f"{MAX_DEPTH} levels of '(' and 'not')")

    def parse_or(self, out, depth):
        self.parse_and(out, depth)
        while _keyword(self.peek(), "or"):
            self.take()
            out.append(" OR ")
            self.parse_and(out, depth)

    def parse_and(self, out, depth):
        self.parse_unary(out, depth)
        while _keyword(self.peek(), "and"):
            self.take()
            out.append(" AND ")
            self.parse_unary(out, depth)

    def parse_unary(self, out, depth):
        while _keyword(self.peek(), "not"):  # iterative: no recursion per "not"
            depth += 1
            self.check_depth(depth)
            self.take()
            out.append("NOT ")
        if self.peek().kind == "lparen":
            self.check_depth(depth + 1)
            open_ = self.take()
            out.append("(")
            self.parse_or(out, depth + 1)
            t = self.peek()
            if t.kind != "rparen":
                raise QueryError(f"expected ')'{_at(t.column)} to close the '('"
                                 f"{_at(open_.column)}, found {_describe(t)}")
            self.take()
            out.append(")")
            return
        self.parse_comparison(out)

    def parse_comparison(self, out):
        name = self.take()
        if name.kind != "name" or any(_keyword(name, w) for w in ("and", "or", "like", "true",
                                                                    "false")):
            raise QueryError(f"expected a name{_at(name.column)}, found {_describe(name)}")
        source, col, fname = self.resolve(name)

        op = self.take()
        like = _keyword(op, "like")
        if op.kind != "op" and not like:
            raise QueryError(f"expected an operator after '{name.text}'{_at(op.column)}, "
                             f"found {_describe(op)}")
        value = self.take()
        if value.kind == "number":
            bound, types = value.number, _TYPES_NUMBER
        elif value.kind == "string":
            bound, types = value.text, _TYPES_STRING
        elif _keyword(value, "true") or _keyword(value, "false"):
            bound, types = (1 if _keyword(value, "true") else 0), _TYPES_BOOL
        else:
            raise QueryError(f"expected a value after '{op.text}'{_at(value.column)}, "
                             f"found {_describe(value)}")
        if like and value.kind != "string":
            raise QueryError(f"expected a quoted pattern after 'like'{_at(value.column)}, "
                             f"found {_describe(value)}")
        op_sql = _SQL_OPS["like" if like else op.text]

        out.append("(")
        if source == "column":
            sql, numeric = col
            where = f"'{name.text}'{_at(name.column)}"
            if numeric and (like or value.kind != "number"):
                raise QueryError(f"{where} is a number: compare it with a number, not "
                                 f"{_describe(value)}")
            if not numeric and value.kind != "string":
                raise QueryError(f"{where} is text: compare it with a quoted string, not "
                                 f"{_describe(value)}")
            out.append(sql + op_sql + "?")
            self.bindings.append(bound)
        elif source == "param":
            self.emit(out, _PARAM_FIELD, fname, types, op_sql, bound)
        elif source == "result":
            self.emit(out, _RESULT_FIELD, fname, types, op_sql, bound)
        else:  # the param if the run has one by that name, else the result
            self.emit(out, _PARAM_FIELD, fname, types, op_sql, bound)
            out.append(" OR (NOT " + _PARAM_PRESENT)
            self.bindings.append(fname)
            out.append(" AND ")
            self.emit(out, _RESULT_FIELD, fname, types, op_sql, bound)
            out.append(")")
        out.append(")")

    def emit(self, out, exists, name, types, op_sql, value):
        out.append(exists + types + " AND f.value" + op_sql + "?)")
        self.bindings.append(name)
        self.bindings.append(value)

    def resolve(self, name):
        for prefix, source in (("params.", "param"), ("results.", "result")):
            if name.text.startswith(prefix):
                rest = name.text[len(prefix):]
                if not rest:
                    raise QueryError(f"expected a name after '{prefix}'{_at(name.column)}")
                return source, None, rest
        if name.text in _RUN_COLUMNS:
            return "column", _RUN_COLUMNS[name.text], None
        exists = lambda table: self.db.execute(  # noqa: E731
            f"SELECT 1 FROM {table} WHERE name = ? LIMIT 1", (name.text,)).fetchone() is not None
        param, result = exists("params"), exists("results")
        if param and result:
            return "both", None, name.text
        if param:
            return "param", None, name.text
        if result:
            return "result", None, name.text
        raise QueryError(f"unknown name '{name.text}'{_at(name.column)}: not a run column (id, "
                         "campaign, status, host, pid, started, ended), nor a param or result "
                         "of any run")


def translate(db, text):
    """(sql, bindings) of a where expression, for ``... WHERE 1 AND (sql)``."""
    return _Translator(db, text).translate()
