"""The shared edge on every server (orchestrator API, the four services, the admin API): whatever
comes in, the answer is JSON with a 4xx, never a 500, and a browser page cannot get in."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import pytest

from httpedge.limits import MAX_BODY_BYTES, MAX_DEPTH, JsonLimitError, parse_json
from mock_services.runtime import ServiceConfig
from tests.httpedge.conftest import JSON_TYPE, Sandbox, send

#: Bodies that break one limit each, and the limit the 400 must name.
OUT_OF_LIMITS = {
    "deep": (b"[" * 300 + b"]" * 300, "max_depth"),
    "very deep": (b'{"a":' * 100_000 + b"1" + b"}" * 100_000, "max_depth"),
    "just too deep": (b"[" * (MAX_DEPTH + 1) + b"]" * (MAX_DEPTH + 1), "max_depth"),
    "huge integer": (b'{"n": ' + b"7" * 5000 + b"}", "integer_range"),
    "beyond 64 bits": (b'{"n": 18446744073709551616}', "integer_range"),
    "NaN": (b'{"n": NaN}', "finite_numbers"),
    "Infinity": (b'{"n": [-Infinity]}', "finite_numbers"),
    "overflowing float": (b'{"n": 1e999}', "finite_numbers"),
    "lone surrogate": (b'{"name": "\\ud800"}', "valid_strings"),
    "lone surrogate key": (b'{"\\udfff": 1}', "valid_strings"),
    "raw surrogate bytes": (b'{"name": "\xed\xa0\x80"}', "valid_strings"),
}


def test_the_limits_take_what_is_inside_them() -> None:
    inside = b"[" * MAX_DEPTH + b"]" * MAX_DEPTH
    assert parse_json(inside) is not None
    assert parse_json(b'{"n": -9223372036854775808, "m": 9223372036854775807, "x": 1.5e300}')
    assert parse_json('{"é": "\\ud83d\\ude00"}'.encode()) == {"é": "\N{GRINNING FACE}"}
    assert parse_json(b'{"s": "' + b"[" * 100 + b'"}') == {"s": "[" * 100}  # brackets in a string
    assert parse_json(b'["\\\\ud800"]') == ["\\ud800"]  # an escaped backslash, not a surrogate
    with pytest.raises(JsonLimitError) as info:
        parse_json(b'{"a": [1, {"b/c": "\\ud800"}]}')
    assert info.value.limit == "valid_strings" and info.value.path == "/a/1/b~1c"


@pytest.mark.parametrize("case", sorted(OUT_OF_LIMITS))
async def test_json_beyond_a_limit_is_a_400_naming_it_on_every_server(
    sandbox: Sandbox, client: aiohttp.ClientSession, case: str
) -> None:
    raw, limit = OUT_OF_LIMITS[case]
    for server in sandbox:
        status, ctype, _, body = await send(
            client, "POST", server.base + server.post_path, raw, JSON_TYPE
        )
        assert (status, ctype) == (400, "application/json"), (server.name, body)
        assert isinstance(body, dict) and body["error"] == "json_limit_exceeded", server.name
        assert body["limit"] == limit and limit in body["message"], (server.name, body)
    status, _, _, users = await send(client, "GET", sandbox.services.urls["users"] + "/users")
    assert status == 200 and users == {"users": []}  # nothing was stored


async def test_invalid_utf_8_in_the_path_or_query_is_no_error(
    sandbox: Sandbox, client: aiohttp.ClientSession
) -> None:
    targets = ("/tasks/%ED%A0%80", "/events?task_id=%ED%A0%80", "/users?email=%ED%B0%80")
    for server in sandbox:
        for target in targets:
            status, _, _, body = await send(client, "GET", server.base + target)
            assert status in (200, 404), (server.name, target, body)


async def test_aiohttps_own_errors_are_json_on_every_server(
    sandbox: Sandbox, client: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "aiohttp")
    for server in sandbox:
        status, ctype, _, body = await send(client, "GET", server.base + "/x" * 5000)
        assert (status, ctype) == (400, "application/json"), server.name  # URL over 8190 bytes
        assert isinstance(body, dict) and body["error"] == "bad_request"
        headers = {"X-Long": "y" * 9000}
        status, ctype, _, body = await send(client, "GET", server.base + "/health", None, headers)
        assert (status, ctype) == (400, "application/json"), server.name  # header over 8190
        status, ctype, _, body = await send(client, "GET", server.base + "/nowhere")
        assert (status, ctype) == (404, "application/json"), server.name
        status, _, headers_back, body = await send(client, "PUT", server.base + server.post_path)
        assert status == 405 and "POST" in headers_back["Allow"], (server.name, headers_back)
        assert isinstance(body, dict) and body["error"] == "method_not_allowed"
    refusals = [r for r in caplog.records if r.name.startswith("aiohttp")]
    assert refusals and all(r.exc_info is None for r in refusals)  # a line each, no traceback


async def test_a_body_over_the_size_limit_is_a_413_however_it_comes(
    sandbox: Sandbox, client: aiohttp.ClientSession
) -> None:
    big = json.dumps({"name": "x" * MAX_BODY_BYTES}).encode()
    keyed = {**JSON_TYPE, "Idempotency-Key": "big-one"}
    for server in sandbox:
        for headers in (JSON_TYPE, keyed):
            status, ctype, _, body = await send(
                client, "POST", server.base + server.post_path, big, headers
            )
            assert (status, ctype) == (413, "application/json"), (server.name, body)
            assert isinstance(body, dict) and body["limit"] == "max_body_bytes"
    users = sandbox.services.urls["users"]
    rule = {"kind": "latency", "delay_ms": 1}
    async with client.post(f"{users}/__admin/faults", json=rule) as resp:
        assert resp.status == 201
    status, _, _, body = await send(client, "POST", f"{users}/users", big, keyed)
    assert status == 413, body
    async with client.get(f"{users}/__admin/stats") as resp:
        assert "500" not in (await resp.json())["by_status"]


async def test_a_body_must_be_sent_as_json(sandbox: Sandbox, client: aiohttp.ClientSession) -> None:
    """A browser's CORS "simple" request (text/plain, a form) cannot reach a handler."""
    user = json.dumps({"email": "ada@example.com", "name": "Ada"}).encode()
    for server in sandbox:
        for ctype in ("text/plain", "application/x-www-form-urlencoded", None):
            headers = {"Content-Type": ctype} if ctype else {}
            status, _, _, body = await send(
                client, "POST", server.base + server.post_path, user, headers
            )
            assert status == 415, (server.name, ctype, body)
            assert isinstance(body, dict) and body["error"] == "unsupported_media_type"
    status, _, _, users = await send(client, "GET", sandbox.services.urls["users"] + "/users")
    assert users == {"users": []}
    status, _, _, body = await send(
        client,
        "POST",
        sandbox.services.urls["users"] + "/users",
        user,
        {"Content-Type": "application/json; charset=utf-8"},
    )
    assert status == 201, body


async def test_cross_origin_requests_are_refused_and_the_own_origin_is_not(
    sandbox: Sandbox, client: aiohttp.ClientSession
) -> None:
    for server in sandbox:
        for origin in ("http://evil.example", "null", f"https://{server.authority}"):
            headers = {**JSON_TYPE, "Origin": origin}
            status, _, _, body = await send(
                client, "POST", server.base + server.post_path, b"{}", headers
            )
            assert status == 403, (server.name, origin, body)
            assert isinstance(body, dict) and body["error"] == "cross_origin"
            status, _, _, body = await send(client, "GET", server.base + "/health", None, headers)
            assert status == 403, (server.name, origin, body)
        port = server.authority.rsplit(":", 1)[1]
        for own in (f"http://{server.authority}", f"http://localhost:{port}"):
            status, _, _, body = await send(
                client, "GET", server.base + "/__admin/stats", None, {"Origin": own}
            )
            assert status in (200, 404), (server.name, own, body)


async def test_the_host_header_must_name_the_server(
    sandbox: Sandbox, client: aiohttp.ClientSession
) -> None:
    """DNS rebinding: a page on evil.example whose name now points to 127.0.0.1 is refused."""
    for server in sandbox:
        port = server.authority.rsplit(":", 1)[1]
        for host in (f"evil.example:{port}", "127.0.0.1", f"127.0.0.1:{int(port) + 1}"):
            status, _, _, body = await send(
                client, "GET", server.base + "/__admin/stats", None, {"Host": host}
            )
            assert status == 403, (server.name, host, body)
            assert isinstance(body, dict) and body["error"] == "host_not_allowed"
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
            status, _, _, body = await send(
                client, "GET", server.base + "/__admin/stats", None, {"Host": host}
            )
            assert status in (200, 404), (server.name, host, body)


async def test_a_submission_with_fields_of_the_wrong_type_is_a_400(
    sandbox: Sandbox, client: aiohttp.ClientSession
) -> None:
    api = sandbox.servers[0].base
    for bad, path in (
        ({"name": None, "context": {}}, "name"),
        ({"name": 7, "context": {}}, "name"),
        ({"name": "user_registration", "context": {}, "version": []}, "version"),
        (
            {"name": "user_registration", "context": {}, "idempotency_key": "k" * 256},
            "idempotency_key",
        ),
        ({"name": "user_registration", "context": {}, "idempotency_key": ""}, "idempotency_key"),
    ):
        status, _, _, body = await send(
            client, "POST", api + "/tasks", json.dumps(bad).encode(), JSON_TYPE
        )
        assert status == 400, (bad, body)
        assert isinstance(body, dict) and [d["path"] for d in body["details"]] == [path]


async def test_an_over_long_idempotency_key_is_a_400_on_every_service(
    sandbox: Sandbox, client: aiohttp.ClientSession
) -> None:
    for server in sandbox.servers[1:5]:  # the admin API takes no keys
        headers = {**JSON_TYPE, "Idempotency-Key": "k" * 256}
        status, _, _, body = await send(
            client, "POST", server.base + server.post_path, b"{}", headers
        )
        assert status == 400, (server.name, body)
        assert isinstance(body, dict) and body["error"] == "bad_idempotency_key"


@pytest.mark.parametrize("service_config", [ServiceConfig(idempotency_max_keys=5)])
async def test_a_service_keeps_a_bounded_number_of_keys(
    sandbox: Sandbox, client: aiohttp.ClientSession
) -> None:
    users = sandbox.services.urls["users"]
    for n in range(12):
        user = {"email": f"u{n}@example.com", "name": "U"}
        headers = {"Idempotency-Key": f"key-{n}"}
        async with client.post(f"{users}/users", json=user, headers=headers) as resp:
            assert resp.status == 201
    async with client.get(f"{users}/__admin/stats") as resp:
        assert (await resp.json())["idempotency_keys"] == 5
    user = {"email": "u11@example.com", "name": "U"}  # the newest key still replays
    async with client.post(f"{users}/users", json=user, headers={"Idempotency-Key": "key-11"}) as r:
        assert r.status == 201 and r.headers["Idempotent-Replayed"] == "true"


async def test_a_handled_500_is_counted_as_a_500(
    sandbox: Sandbox, client: aiohttp.ClientSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    monkeypatch.setattr(sandbox.services.data.users, "create", broken)
    users = sandbox.services.urls["users"]
    async with client.post(f"{users}/users", json={"email": "a@example.com", "name": "A"}) as r:
        assert r.status == 500 and (await r.json())["error"] == "internal_error"
    async with client.get(f"{users}/__admin/stats") as resp:
        assert (await resp.json())["by_status"] == {"500": 1}


async def _raw_exchange(authority: str, request: bytes) -> tuple[int, bytes]:
    host, port = authority.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


async def test_a_header_that_is_not_utf_8_is_a_400_and_never_echoed(
    sandbox: Sandbox, client: aiohttp.ClientSession
) -> None:
    body = b'{"email": "ada@example.com", "name": "Ada"}'
    for server in sandbox:
        for header in (
            b"Idempotency-Key: \xff\xfe",
            b"X-Correlation-ID: \xc3\x28",
            b"Origin: http://\xff.example",
        ):
            request = (
                f"POST {server.post_path} HTTP/1.1\r\nHost: {server.authority}\r\n".encode()
                + b"Content-Type: application/json\r\nConnection: close\r\n"
                + header
                + f"\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                + body
            )
            status, answer = await _raw_exchange(server.authority, request)
            assert status == 400, (server.name, answer)
            assert parse_json(answer)["error"] == "bad_header"  # no lone surrogate quoted back
    async with client.get(sandbox.services.urls["users"] + "/__admin/requests") as resp:
        journal = parse_json(await resp.read())  # within every limit: no lone surrogate
    assert [r["status"] for r in journal["requests"]] == [400, 400, 400]
