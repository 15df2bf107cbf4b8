"""`slotmill webhooks add/list/rotate/disable/enable/replay` (issue 14)."""

from __future__ import annotations

import psycopg
import pytest

from slotmill import seed
from slotmill.cli import main


def test_webhooks_commands(env_db: str, capsys: pytest.CaptureFixture[str]) -> None:
    with psycopg.connect(env_db) as conn:
        seed.tenant(conn, "acme")
        conn.commit()
    assert main(["webhooks", "add", "--tenant", "acme", "--events", "booking.confirmed", "https://h.example/in"]) == 0
    out = capsys.readouterr()
    first, secret = out.out.splitlines()
    endpoint = first.split()[1]
    assert secret.startswith("whsec_") and "shown once" in out.err
    assert main(["webhooks", "list", "--tenant", "acme"]) == 0
    listed = capsys.readouterr().out
    assert endpoint in listed and "active" in listed and secret not in listed
    assert main(["webhooks", "rotate", "--tenant", "acme", endpoint]) == 0
    assert capsys.readouterr().out.strip().startswith("whsec_")
    assert main(["webhooks", "disable", "--tenant", "acme", endpoint]) == 0
    assert "disabled" in capsys.readouterr().out
    assert main(["webhooks", "enable", "--tenant", "acme", endpoint]) == 0
    assert "enabled" in capsys.readouterr().out
    assert main(["webhooks", "replay", "--tenant", "acme", endpoint, "--from-seq", "1"]) == 0
    assert "deliveries due again" in capsys.readouterr().out
    # mistakes are one line and exit 2
    assert main(["webhooks", "add", "--tenant", "acme", "--events", "nope", "https://h.example/in"]) == 2
    assert main(["webhooks", "add", "--tenant", "acme", "ftp://h.example/in"]) == 2
    assert main(["webhooks", "replay", "--tenant", "acme", endpoint]) == 2
    assert main(["webhooks", "rotate", "--tenant", "acme", "00000000-0000-0000-0000-000000000000"]) == 2
    assert main(["webhooks", "list", "--tenant", "nope"]) == 2
