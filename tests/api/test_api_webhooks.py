"""Webhook endpoints over the host API (tenant key): the secret shown once, rotation,
disable/enable, replay, the delivery log, delete; admin status shows each endpoint's last
result and circuit."""

from __future__ import annotations

from typing import Any

import httpx

from tests.support import World, bearer, db_exec, db_rows, problem, run


def test_endpoints_are_managed_with_the_tenant_key(world: World) -> None:
    w, a = world, world.acme
    key = bearer(a.key)

    async def body(c: httpx.AsyncClient) -> dict[str, Any]:
        problem(await c.post("/v1/tenants/acme/webhooks", json={"url": "https://h.example/x"}), 401)
        problem(await c.post("/v1/tenants/acme/webhooks", json={"url": "ftp://h.example/x"}, headers=key), 422)
        r = await c.post(
            "/v1/tenants/acme/webhooks",
            json={"url": "https://h.example/x", "event_types": ["nope"]},
            headers=key,
        )
        problem(r, 422)
        r = await c.post(
            "/v1/tenants/acme/webhooks",
            json={"url": "https://h.example/hooks", "event_types": ["booking.confirmed", "slots.changed"]},
            headers=key,
        )
        assert r.status_code == 201, r.text
        made = r.json()
        assert made["secret"].startswith("whsec_") and made["circuit"] == "closed" and made["active"]
        ep = made["id"]
        listed = (await c.get("/v1/tenants/acme/webhooks", headers=key)).json()["endpoints"]
        assert [e["id"] for e in listed] == [ep] and "secret" not in listed[0]
        # another tenant's key sees none of it
        assert (await c.get("/v1/tenants/other/webhooks", headers=bearer(w.other.key))).json()["endpoints"] == []
        problem(await c.post(f"/v1/tenants/other/webhooks/{ep}/rotate", headers=bearer(w.other.key)), 404)
        rotated = (await c.post(f"/v1/tenants/acme/webhooks/{ep}/rotate", headers=key)).json()
        assert rotated["secret"] != made["secret"]
        r = await c.post(f"/v1/tenants/acme/webhooks/{ep}/disable", headers=key)
        assert (r.json()["active"], r.json()["disabled_reason"]) == (False, "host")
        r = await c.post(f"/v1/tenants/acme/webhooks/{ep}/enable", headers=key)
        assert (r.json()["active"], r.json()["disabled_reason"]) == (True, None)
        problem(await c.post(f"/v1/tenants/acme/webhooks/{ep}/replay", json={}, headers=key), 422)
        r = await c.post(f"/v1/tenants/acme/webhooks/{ep}/replay", json={"from_seq": 1}, headers=key)
        assert r.status_code == 202
        log = (await c.get(f"/v1/tenants/acme/webhooks/{ep}/deliveries", headers=key)).json()["deliveries"]
        assert len(log) == r.json()["deliveries"]
        return made

    made = run(w.url, body)
    # the circuit opens (as the worker would) and admin status says so
    db_exec(
        w.url,
        "UPDATE webhook_endpoints SET active = false, disabled_reason = 'circuit', consecutive_failures = 20,"
        " last_status = 503, last_error = 'HTTP 503' WHERE id = %s",
        (made["id"],),
    )

    async def status(c: httpx.AsyncClient) -> dict[str, Any]:
        r = await c.get("/v1/admin/tenants/acme/status", headers=bearer("admin-secret"))
        assert r.status_code == 200, r.text
        out: dict[str, Any] = r.json()
        return out

    (hook,) = run(w.url, status, admin_key="admin-secret")["webhooks"]
    assert (hook["id"], hook["circuit"], hook["last_status"], hook["consecutive_failures"]) == (
        made["id"],
        "open",
        503,
        20,
    )

    async def delete(c: httpx.AsyncClient) -> None:
        r = await c.delete(f"/v1/tenants/acme/webhooks/{made['id']}", headers=bearer(a.key))
        assert r.status_code == 200 and r.json()["deleted"] is True
        problem(await c.delete(f"/v1/tenants/acme/webhooks/{made['id']}", headers=bearer(a.key)), 404)

    run(w.url, delete)
    assert db_rows(w.url, "SELECT count(*) FROM webhook_endpoints") == [(0,)]
