"""A newcomer's first hour: the README's CLI lines run as written (inside `make shell`), the
admin key of `slotmill run`, `demo --reset` keeping ids and keys, `keys list` / `keys revoke`."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
import subprocess
from pathlib import Path
from uuid import UUID

import psycopg
import pytest

from slotmill.cli import build_parser, main
from slotmill.config import Settings
from slotmill.demo import DEMO_SLUG, demo_id
from slotmill.keys import hash_key
from slotmill.runall import ADMIN_KEY_FILE, admin_key

ROOT = Path(__file__).resolve().parents[2]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_ENV_ASSIGNMENT = re.compile(r"^[A-Z_][A-Z0-9_]*=")


# --- the README's command lines ------------------------------------------------------------


def cli_lines(path: Path) -> list[str]:
    """Every `slotmill ...` command in the shell blocks of a Markdown file, as written."""
    out: list[str] = []
    in_block = False
    pending = ""
    for raw in path.read_text().splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        if line.startswith("```"):
            in_block = not in_block and line in ("```sh", "```shell", "```bash", "```console")
            continue
        if not in_block:
            continue
        words = shlex.split(line, comments=True)
        while words and _ENV_ASSIGNMENT.match(words[0]):
            words.pop(0)
        if words[:1] == ["slotmill"]:
            out.append(shlex.join(words))
    return out


def test_the_docs_have_cli_lines_to_check() -> None:
    assert len(cli_lines(ROOT / "README.md")) >= 8


@pytest.mark.parametrize("path", DOCS, ids=lambda p: p.name)
def test_every_cli_line_in_the_docs_is_a_valid_command(path: Path) -> None:
    parser = build_parser()
    for line in cli_lines(path):
        try:
            parser.parse_args(shlex.split(line)[1:])
        except SystemExit:
            pytest.fail(f"{path.name}: `{line}` is not a valid slotmill command")


def test_readme_says_where_the_cli_lines_run() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "make shell" in readme
    assert re.search(r"^shell:", (ROOT / "Makefile").read_text(), re.MULTILINE)


@pytest.mark.skipif(
    shutil.which("make") is None or not (ROOT / ".venv" / ".installed").exists(),
    reason="needs make and the checkout's .venv (make install)",
)
def test_make_shell_puts_the_venv_first_on_path() -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS")}
    env["SHELL"] = "/bin/sh"
    done = subprocess.run(
        ["make", "-s", "shell"],
        cwd=ROOT,
        input="command -v slotmill\nslotmill keys --help\n",
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert Path(lines[0]) == ROOT / ".venv" / "bin" / "slotmill"
    assert "revoke" in done.stdout


# --- the admin key of `slotmill run` -------------------------------------------------------


def test_admin_key_is_made_once_private_and_reused(tmp_path: Path) -> None:
    settings = Settings(home=tmp_path / "home", admin_key=None)
    first = admin_key(settings)
    path = tmp_path / "home" / ADMIN_KEY_FILE
    assert first.path == path.resolve()
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert re.fullmatch(r"[0-9a-f]{64}", first.secret)
    assert admin_key(settings) == first


def test_admin_key_from_the_environment_wins_and_writes_nothing(tmp_path: Path) -> None:
    key = admin_key(Settings(home=tmp_path / "home", admin_key="from-env"))
    assert (key.secret, key.path) == ("from-env", None)
    assert not (tmp_path / "home" / ADMIN_KEY_FILE).exists()


def test_admin_key_file_left_empty_or_readable_is_repaired(tmp_path: Path) -> None:
    path = tmp_path / ADMIN_KEY_FILE
    path.write_text("")
    path.chmod(0o644)
    key = admin_key(Settings(home=tmp_path, admin_key=None))
    assert key.secret and path.read_text().strip() == key.secret
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


# --- demo --reset --------------------------------------------------------------------------


def _demo_ids(url: str) -> dict[str, list[tuple[str, UUID]]]:
    with psycopg.connect(url) as c:
        t = c.execute("SELECT id FROM tenants WHERE slug = %s", (DEMO_SLUG,)).fetchone()
        assert t is not None
        return {
            "tenant": [("demo", t[0])],
            "staff": c.execute("SELECT display_name, id FROM staff WHERE tenant_id = %s ORDER BY 1", t).fetchall(),
            "services": c.execute("SELECT name, id FROM services WHERE tenant_id = %s ORDER BY 1", t).fetchall(),
            "locations": c.execute("SELECT name, id FROM locations WHERE tenant_id = %s ORDER BY 1", t).fetchall(),
            "bookings": c.execute(
                "SELECT customer_ref, id FROM bookings WHERE tenant_id = %s AND status = 'confirmed' ORDER BY 1", t
            ).fetchall(),
        }


def test_demo_reset_keeps_the_tenant_its_keys_and_every_id(env_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo"]) == 0
    assert "loaded" in capsys.readouterr().out
    before = _demo_ids(env_db)
    assert dict(before["staff"])["Ava Clarke"] == demo_id("staff", "Ava Clarke")
    assert dict(before["services"])["Haircut"] == demo_id("service", "Haircut")
    assert before["tenant"] == [("demo", demo_id("tenant", DEMO_SLUG))]
    assert len(before["bookings"]) >= 5

    assert main(["keys", "create", "--tenant", "demo"]) == 0
    assert main(["keys", "create", "--tenant", "demo"]) == 0
    secrets = capsys.readouterr().out.split()
    with psycopg.connect(env_db) as c:
        # Something a visitor did meanwhile: a hold through the widget. The reset drops it.
        c.execute(
            "INSERT INTO bookings (tenant_id, staff_id, service_id, starts_at, ends_at, status, expires_at)"
            " SELECT tenant_id, staff_id, service_id, starts_at, ends_at, 'held', now() + interval '1 hour'"
            " FROM availability_slots WHERE tenant_id = %s ORDER BY starts_at DESC LIMIT 1",
            (before["tenant"][0][1],),
        )

    assert main(["demo"]) == 0
    assert "already exists" in capsys.readouterr().out
    assert main(["demo", "--reset"]) == 0
    out = capsys.readouterr().out
    assert "kept 2 host keys" in out and "same tenant and ids" in out
    assert _demo_ids(env_db) == before
    with psycopg.connect(env_db) as c:
        live = c.execute(
            "SELECT key_hash FROM api_keys WHERE tenant_id = %s AND revoked_at IS NULL", (before["tenant"][0][1],)
        ).fetchall()
        assert {r[0] for r in live} == {hash_key(s) for s in secrets}
        held = c.execute("SELECT count(*) FROM bookings WHERE status = 'held'").fetchone()
        assert held == (0,)
        assert c.execute("SELECT count(*) FROM availability_slots").fetchone() != (0,)
        assert c.execute("SELECT count(*) FROM recompute_requests").fetchone() == (0,)
    assert main(["verify", "--tenant", "demo"]) == 0


# --- keys list / revoke --------------------------------------------------------------------


def test_keys_list_and_revoke(env_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(env_db) as c:
        c.execute("INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme'), ('other', 'Other')")
    assert main(["keys", "list", "--tenant", "acme"]) == 0
    assert "no keys" in capsys.readouterr().out
    for slug in ("acme", "acme", "other"):
        assert main(["keys", "create", "--tenant", slug]) == 0
    first, second, foreign = capsys.readouterr().out.split()

    assert main(["keys", "list", "--tenant", "acme"]) == 0
    listed = capsys.readouterr().out
    assert first[:10] in listed and second[:10] in listed and foreign[:10] not in listed
    assert first not in listed and second not in listed, "never the secret"
    assert hash_key(first) not in listed

    # Another tenant's key is not found through this tenant, by prefix or by id.
    assert main(["keys", "revoke", "--tenant", "acme", foreign[:10]]) == 2
    assert "no key of tenant acme" in capsys.readouterr().err
    # "smk_" is the start of every prefix: ambiguous, nothing revoked.
    assert main(["keys", "revoke", "--tenant", "acme", "smk_"]) == 2
    assert "matches 2 keys" in capsys.readouterr().err

    assert main(["keys", "revoke", "--tenant", "acme", first[:10]]) == 0
    assert "revoked" in capsys.readouterr().out
    assert main(["keys", "revoke", "--tenant", "acme", first[:10]]) == 0
    assert "already revoked" in capsys.readouterr().out
    with psycopg.connect(env_db) as c:
        second_id = c.execute("SELECT id FROM api_keys WHERE key_hash = %s", (hash_key(second),)).fetchone()
        assert second_id is not None
    assert main(["keys", "revoke", "--tenant", "acme", str(second_id[0])]) == 0
    capsys.readouterr()

    with psycopg.connect(env_db) as c:
        revoked: dict[str, bool] = dict(c.execute("SELECT key_hash, revoked_at IS NOT NULL FROM api_keys").fetchall())
    assert revoked == {hash_key(first): True, hash_key(second): True, hash_key(foreign): False}
    assert main(["keys", "list", "--tenant", "acme"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("smk_")]
    assert len(rows) == 2 and all(not line.rstrip().endswith("-") for line in rows)

    assert main(["keys", "list", "--tenant", "nope"]) == 2
    assert "nope" in capsys.readouterr().err
