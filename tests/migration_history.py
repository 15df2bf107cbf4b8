"""The texts sql/migrations had in the repository's history, read with git.

A database migrated at some commit holds exactly the migration texts of that commit (and
their checksums), so "every commit that changed sql/migrations" lists every schema a
database in the field can have.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MIGRATIONS = "sql/migrations"
_FILE = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Text:
    """One text of one migration file."""

    path: str  # relative to the repository root
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        # what slotmill.sql.Migration.checksum computed at every commit
        return hashlib.sha256(self.sql.encode()).hexdigest()


def git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, check=True)
    return out.stdout.decode("utf-8")


def unavailable() -> str | None:
    """Why the history cannot be read here, or None when it can."""
    if shutil.which("git") is None:
        return "git is not installed: the migrations' history cannot be read"
    try:
        inside = git("rev-parse", "--is-inside-work-tree").strip()
    except subprocess.CalledProcessError:
        return f"{ROOT} is not a git checkout (an sdist or an image): the migrations' history cannot be read"
    if inside != "true":
        return f"{ROOT} is not a git work tree"
    if git("rev-parse", "--is-shallow-repository").strip() == "true":
        return "shallow clone: the migrations' history is incomplete (fetch with --unshallow)"
    return None


def _text(path: str, sql: str) -> Text | None:
    m = _FILE.match(Path(path).name)
    if m is None:
        return None
    return Text(path, int(m["version"]), m["name"], sql)


def texts_at(commit: str) -> list[Text]:
    """Every migration of ``commit``, in version order."""
    found = []
    for path in git("ls-tree", "--name-only", f"{commit}:{MIGRATIONS}").split():
        t = _text(f"{MIGRATIONS}/{path}", git("show", f"{commit}:{MIGRATIONS}/{path}"))
        if t is not None:
            found.append(t)
    return sorted(found, key=lambda t: t.version)


def commits_changing_migrations() -> list[str]:
    """The commits of HEAD's history that changed sql/migrations, oldest first."""
    return git("log", "--reverse", "--format=%H", "HEAD", "--", MIGRATIONS).split()


def paths_ever() -> list[str]:
    """Every migration file HEAD's history ever added."""
    out = git("log", "--format=", "--name-only", "--diff-filter=A", "HEAD", "--", MIGRATIONS)
    return sorted({p for p in out.split() if _FILE.match(Path(p).name)})


def versions_of(path: str) -> list[tuple[str, str | None]]:
    """(commit, text or None when deleted) at each commit that changed ``path``, oldest first."""
    out: list[tuple[str, str | None]] = []
    for commit in git("log", "--reverse", "--format=%H", "HEAD", "--", path).split():
        try:
            out.append((commit, git("show", f"{commit}:{path}")))
        except subprocess.CalledProcessError:
            out.append((commit, None))
    return out


def short(commit: str) -> str:
    return commit[:7]
