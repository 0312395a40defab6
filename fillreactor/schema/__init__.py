"""The VICIdial schema fillreactor works on, as package data (``vicidial.sql``).

Rules this module keeps:

* ``vicidial.sql`` is the one source of the DDL; everything here is read from it, never restated.
* Splitting into statements understands ``--`` and ``/* */`` comments, quoted strings and backticks,
  so a ``;`` inside any of them never ends a statement. Comments are dropped from the statements.
* ``TABLES`` lists the tables in file order, so loading them in that order is always valid and
  tests can iterate over every table the schema defines.
* Nothing here opens a connection: loading is for callers (``fillreactor.schema.cli``, the test
  harness), which run ``schema_statements()`` one by one.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources

__all__ = ["TABLES", "schema_sql", "schema_statements", "split_statements"]

_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+`?(\w+)`?", re.IGNORECASE)


@cache
def schema_sql() -> str:
    """The whole DDL file, as shipped."""
    return resources.files(__package__).joinpath("vicidial.sql").read_text(encoding="utf-8")


def schema_statements() -> list[str]:
    """The DDL as single statements without comments or the trailing ``;``."""
    return split_statements(schema_sql())


def split_statements(sql: str) -> list[str]:
    """Split SQL text on top-level ``;``; comments removed, empty statements dropped."""
    statements: list[str] = []
    current: list[str] = []
    index, length = 0, len(sql)
    while index < length:
        char = sql[index]
        if char in "'\"`":
            end = _end_of_quoted(sql, index)
            current.append(sql[index:end])
            index = end
        elif sql.startswith("--", index) or char == "#":
            newline = sql.find("\n", index)
            index = length if newline < 0 else newline
        elif sql.startswith("/*", index):
            close = sql.find("*/", index + 2)
            index = length if close < 0 else close + 2
        elif char == ";":
            statements.append("".join(current))
            current = []
            index += 1
        else:
            current.append(char)
            index += 1
    statements.append("".join(current))
    return [_tidy(statement) for statement in statements if statement.strip()]


def _end_of_quoted(sql: str, start: int) -> int:
    """Index just past the quoted token opening at ``start`` (doubled quotes and ``\\`` escapes)."""
    quote = sql[start]
    index = start + 1
    while index < len(sql):
        char = sql[index]
        if char == "\\" and quote != "`":
            index += 2
            continue
        if char == quote:
            if sql.startswith(quote * 2, index):
                index += 2
                continue
            return index + 1
        index += 1
    return len(sql)  # unterminated: the server will report it


def _tidy(statement: str) -> str:
    lines = [line.rstrip() for line in statement.strip().splitlines()]
    return "\n".join(line for line in lines if line)


def _table_names() -> tuple[str, ...]:
    names = []
    for statement in schema_statements():
        match = _CREATE_TABLE.match(statement)
        if match:
            names.append(match.group(1))
    return tuple(names)


TABLES: tuple[str, ...] = _table_names()
