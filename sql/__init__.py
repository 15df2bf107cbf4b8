"""The project's SQL, kept as SQL: numbered migrations and named queries.

`sql/queries/*.sql` hold named blocks, each file for the one module that runs them::

    -- owner: slotmill.api.reads
    -- name: read_slots_by_staff
    -- One line saying what it is for.
    SELECT ...

Parameters are psycopg ``%(name)s`` placeholders. The owner gets its statements with
``Q = owned_by(__name__)`` and runs ``Q["read_slots_by_staff"]``.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

SQL_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = SQL_DIR / "migrations"
QUERIES_DIR = SQL_DIR / "queries"

_NAME = re.compile(r"^--\s*name:\s*(?P<name>[a-z0-9_]+)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


@cache
def migrations() -> tuple[Migration, ...]:
    found = []
    for path in sorted(MIGRATIONS_DIR.glob("*.sql")):
        m = _MIGRATION.match(path.name)
        if not m:
            raise RuntimeError(f"migration file name not NNNN_name.sql: {path.name}")
        found.append(Migration(int(m["version"]), m["name"], path.read_text()))
    versions = [m.version for m in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"two migrations share a number: {versions}")
    return tuple(found)


def schema_version() -> int:
    """The version a current database has."""
    return max(m.version for m in migrations())


_OWNER = re.compile(r"^--\s*owner:\s*(?P<owner>[a-z_.]+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class Queries:
    """The named statements of one file in ``sql/queries/``, held by the one module that
    runs them (its ``-- owner:`` line). Other modules call that module's functions; a test
    (tests/sql/test_sql_ownership.py) fails if any other module reaches these statements."""

    file: str
    owner: str
    statements: dict[str, str]

    def __getitem__(self, name: str) -> str:
        try:
            return self.statements[name]
        except KeyError:
            raise KeyError(f"no query named {name!r} in sql/queries/{self.file}") from None


def _parse(path: Path) -> Queries:
    text = path.read_text()
    owner = _OWNER.search(text)
    if owner is None:
        raise RuntimeError(f"sql/queries/{path.name} names no owner (a line '-- owner: slotmill.x.y')")
    statements: dict[str, str] = {}
    marks = list(_NAME.finditer(text))
    for i, mark in enumerate(marks):
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        name = mark["name"]
        if name in statements:
            raise RuntimeError(f"query {name!r} defined twice in {path.name}")
        statements[name] = text[mark.end() : end].strip()
    return Queries(path.name, owner["owner"], statements)


@cache
def query_files() -> dict[str, Queries]:
    """Every query file by its owner module; one file per owner."""
    out: dict[str, Queries] = {}
    for path in sorted(QUERIES_DIR.glob("*.sql")):
        q = _parse(path)
        if q.owner in out:
            raise RuntimeError(f"{q.owner} owns both {out[q.owner].file} and {q.file}")
        out[q.owner] = q
    return out


def owned_by(module: str) -> Queries:
    """The statements of the query file ``module`` owns; call as ``owned_by(__name__)``."""
    try:
        return query_files()[module]
    except KeyError:
        raise RuntimeError(f"no file in {QUERIES_DIR} has the line '-- owner: {module}'") from None
