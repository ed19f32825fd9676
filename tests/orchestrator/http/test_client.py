"""The service-call HTTP client against real loopback servers, on asyncio's loop and uvloop.

An aiohttp server covers ordinary exchanges; raw asyncio servers send the byte sequences an
aiohttp server never would (interim answers, read-until-close bodies, garbage, resets).
"""

from __future__ import annotations

import asyncio
import gzip
import socket
import ssl
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import pytest
import trustme
from aiohttp import web

from orchestrator.errors import ExchangeError
from orchestrator.http import client as client_module
from orchestrator.http.client import HttpClient

SEEN = web.AppKey("seen", "Seen")
RawHandler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


pytestmark = pytest.mark.both_loops


class Seen:
    """What the aiohttp test server saw: requests, and the client ports they came from."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.ports: list[int] = []
        self.in_flight = 0
        self.most_in_flight = 0
        self.release = asyncio.Event()


async def echo(request: web.Request) -> web.StreamResponse:
    seen = request.app[SEEN]
    seen.requests.append(
        {
            "method": request.method,
            "path": request.path_qs,
            "headers": dict(request.headers),
            "body": await request.read(),
            "names": [k.decode().lower() for k, _ in request.raw_headers],
        }
    )
    seen.ports.append(request.transport.get_extra_info("peername")[1])  # type: ignore[union-attr]
    if request.path == "/hold":
        seen.in_flight += 1
        seen.most_in_flight = max(seen.most_in_flight, seen.in_flight)
        await seen.release.wait()
        seen.in_flight -= 1
    if request.path == "/chunked":
        resp = web.StreamResponse(status=200)
        resp.enable_chunked_encoding()
        await resp.prepare(request)
        for part in (b'{"parts": ', b"[1, 2, ", b"3]}"):
            await resp.write(part)
        await resp.write_eof()
        return resp
    if request.path == "/close":
        return web.json_response({"ok": True}, headers={"Connection": "close"})
    headers = {"X-Multi": "a"}
    resp = web.json_response({"ok": True}, status=201, headers=headers)
    resp.headers.add("X-Multi", "b")
    return resp


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, Seen]]:
    app = web.Application()
    app[SEEN] = seen = Seen()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app, handler_cancellation=True)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    yield f"http://127.0.0.1:{runner.addresses[0][1]}", seen
    seen.release.set()
    await runner.cleanup()


@pytest.fixture
async def client() -> AsyncIterator[HttpClient]:
    async with HttpClient(max_connections=10) as c:
        yield c


async def raw_server(handler: RawHandler) -> tuple[str, asyncio.Server]:
    srv = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    return f"http://127.0.0.1:{port}", srv


async def read_head(reader: asyncio.StreamReader) -> bytes:
    return await reader.readuntil(b"\r\n\r\n")


async def answer_raw(payload: bytes, url_path: str = "/") -> Any:
    """One exchange with a raw server that answers ``payload`` and then closes."""

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(payload)
        await writer.drain()
        writer.close()

    url, srv = await raw_server(handler)
    try:
        async with HttpClient() as c:
            return await c.request("GET", url + url_path, timeout_s=5)
    finally:
        srv.close()
        await srv.wait_closed()


async def test_a_json_exchange(server: tuple[str, Seen], client: HttpClient) -> None:
    url, seen = server
    resp = await client.request(
        "POST",
        f"{url}/users",
        body=b'{"a": 1}',
        headers={"Idempotency-Key": "t/s/create"},
        timeout_s=5,
    )
    assert resp.status == 201 and resp.body == b'{"ok": true}'
    assert resp.headers["content-type"] == resp.headers["Content-Type"]
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.headers.getall("X-Multi") == ["a", "b"]
    sent = seen.requests[0]
    assert (sent["method"], sent["path"], sent["body"]) == ("POST", "/users", b'{"a": 1}')
    assert sent["headers"]["Idempotency-Key"] == "t/s/create"
    assert sent["headers"]["Content-Type"] == "application/json"
    assert sent["headers"]["Host"] == url.removeprefix("http://")


async def test_keep_alive_reuses_one_connection(
    server: tuple[str, Seen], client: HttpClient
) -> None:
    url, seen = server
    for _ in range(3):
        assert (await client.request("GET", f"{url}/x", timeout_s=5)).status == 201
    assert len(set(seen.ports)) == 1


async def test_a_connection_idle_too_long_is_not_reused(
    server: tuple[str, Seen],
    client: HttpClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, seen = server
    monkeypatch.setattr(client_module, "IDLE_EXPIRY_S", 0.0)
    for _ in range(2):
        assert (await client.request("GET", f"{url}/x", timeout_s=5)).status == 201
    assert len(set(seen.ports)) == 2


async def test_connection_close_is_honoured(server: tuple[str, Seen], client: HttpClient) -> None:
    url, seen = server
    for _ in range(2):
        assert (await client.request("GET", f"{url}/close", timeout_s=5)).status == 200
    assert len(set(seen.ports)) == 2


async def test_a_chunked_body_is_joined(server: tuple[str, Seen], client: HttpClient) -> None:
    url, _ = server
    resp = await client.request("GET", f"{url}/chunked", timeout_s=5)
    assert resp.body == b'{"parts": [1, 2, 3]}'


async def test_the_url_is_percent_encoded_like_aiohttp(
    server: tuple[str, Seen], client: HttpClient
) -> None:
    url, seen = server
    target = f"{url}/users/ä ö?email=a b+c@exämple.com&q=100%"
    await client.request("GET", target, timeout_s=5)
    async with aiohttp.ClientSession() as session, session.get(target) as resp:
        await resp.read()
    ours, theirs = (r["path"] for r in seen.requests)
    assert ours == theirs == "/users/%C3%A4%20%C3%B6?email=a+b+c@ex%C3%A4mple.com&q=100%25"


async def test_a_caller_can_replace_the_default_headers(
    server: tuple[str, Seen], client: HttpClient
) -> None:
    url, seen = server
    await client.request(
        "POST",
        f"{url}/a",
        body=b"<a/>",
        timeout_s=5,
        headers={
            "content-type": "application/xml",
            "User-Agent": "billing-sync/2",
            "Accept": "*/*",
        },
    )
    sent = seen.requests[0]["headers"]
    assert (sent["Content-Type"], sent["User-Agent"], sent["Accept"]) == (
        "application/xml",
        "billing-sync/2",
        "*/*",
    )
    assert sent["Content-Length"] == "4"
    names = seen.requests[0]["names"]
    assert all(names.count(n) == 1 for n in ("content-type", "user-agent", "accept"))


async def test_a_get_without_a_body_sends_no_length_and_a_bodiless_post_sends_zero(
    server: tuple[str, Seen],
    client: HttpClient,
) -> None:
    url, seen = server
    await client.request("GET", f"{url}/a", timeout_s=5)
    await client.request("POST", f"{url}/b", timeout_s=5)
    assert "Content-Length" not in seen.requests[0]["headers"]
    assert seen.requests[1]["headers"]["Content-Length"] == "0"


async def test_head_returns_the_headers_only(server: tuple[str, Seen], client: HttpClient) -> None:
    url, _ = server
    resp = await client.request("HEAD", f"{url}/x", timeout_s=5)
    assert resp.status == 201 and resp.body == b""
    assert (await client.request("GET", f"{url}/x", timeout_s=5)).body == b'{"ok": true}'


async def test_no_more_connections_than_the_cap(server: tuple[str, Seen]) -> None:
    url, seen = server
    async with HttpClient(max_connections=3) as c:
        calls = [
            asyncio.create_task(c.request("GET", f"{url}/hold", timeout_s=5)) for _ in range(8)
        ]
        while seen.in_flight < 3:  # noqa: ASYNC110 - the server's side is the signal
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.05)
        assert seen.in_flight == 3
        seen.release.set()
        assert [r.status for r in await asyncio.gather(*calls)] == [201] * 8
    assert seen.most_in_flight == 3 and len(set(seen.ports)) == 3


async def test_a_timeout_raises_and_the_connection_is_not_reused(
    server: tuple[str, Seen], client: HttpClient
) -> None:
    url, seen = server
    with pytest.raises(TimeoutError):
        await client.request("GET", f"{url}/hold", timeout_s=0.05)
    seen.release.set()
    assert (await client.request("GET", f"{url}/x", timeout_s=5)).status == 201
    assert len(set(seen.ports)) == 2


async def test_an_idle_connection_the_server_closed_is_replaced() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        writer.close()  # keep-alive was not refused, but the server closes anyway

    url, srv = await raw_server(handler)
    try:
        async with HttpClient() as c:
            assert (await c.request("GET", url, timeout_s=5)).status == 200
            pooled = [conn for pool in c._idle.values() for conn in pool]
            while not all(conn.closed for conn in pooled):  # noqa: ASYNC110
                await asyncio.sleep(0.005)  # the FIN arrives while the connection is idle
            assert (await c.request("GET", url, timeout_s=5)).status == 200
    finally:
        srv.close()
        await srv.wait_closed()


async def test_interim_answers_are_skipped() -> None:
    resp = await answer_raw(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\n"
        b"Link: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnull"
    )
    assert resp.status == 200 and resp.body == b"null"


async def test_a_body_framed_by_the_connection_closing() -> None:
    resp = await answer_raw(
        b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{"until": "close"}'
    )
    assert resp.body == b'{"until": "close"}'


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),  # zlib-wrapped, as the RFC says
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # raw, as some servers send it
    ],
)
async def test_a_body_compressed_unasked_is_decoded(
    encoding: str,
    encode: Callable[[bytes], bytes],
) -> None:
    body = encode(b'{"compressed": true}')
    resp = await answer_raw(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: "
        + encoding.encode()
        + b"\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )
    assert resp.body == b'{"compressed": true}'


@pytest.mark.parametrize(
    "payload",
    [
        b"HTTP/1.1 200 OK\r\nContent-Encoding: br\r\nContent-Length: 2\r\n\r\nxx",  # unknown
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: 2\r\n\r\nxx",  # corrupt
        b"",  # closed without a word
        b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n{}",  # closed before the announced body
        b"HTTP/1.1 200 OK\r\nContent-Le",  # closed inside the headers
        b"SSH-2.0-OpenSSH_9.6\r\n\r\n",  # not HTTP at all
    ],
)
async def test_incomplete_or_foreign_answers_raise_exchange_error(payload: bytes) -> None:
    with pytest.raises(ExchangeError):
        await answer_raw(payload)


async def test_a_reset_raises_exchange_error() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_head(reader)
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    url, srv = await raw_server(handler)
    try:
        async with HttpClient() as c:
            with pytest.raises(ExchangeError, match=r"lost|closed"):
                await c.request("POST", url, body=b"{}", timeout_s=5)
    finally:
        srv.close()
        await srv.wait_closed()


async def test_refused_connection_raises_exchange_error() -> None:
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with HttpClient() as c:
        with pytest.raises(ExchangeError, match=f"cannot connect to 127.0.0.1:{port}"):
            await c.request("GET", f"http://127.0.0.1:{port}/", timeout_s=5)


@pytest.mark.parametrize(
    ("method", "url", "headers", "match"),
    [
        ("GET", "http://127.0.0.1:1/", {"X-Correlation-ID": "a\r\nX-Evil: 1"}, "X-Correlation-ID"),
        ("GET", "http://127.0.0.1:1/", {"Bad Name": "v"}, "Bad Name"),
        ("GE T", "http://127.0.0.1:1/", {}, "method"),
        (
            "GET",
            "http://127.0.0.1:1/",
            {"content-length": "5", "Host": "x"},
            "content-length, host",
        ),
        ("GET", "ftp://127.0.0.1/file", {}, "http"),
        ("GET", "/relative/only", {}, "http"),
    ],
)
async def test_what_http_cannot_carry_is_refused_before_sending(
    method: str,
    url: str,
    headers: dict[str, str],
    match: str,
) -> None:
    async with HttpClient() as c:
        with pytest.raises(ValueError, match=match):
            await c.request(method, url, headers=headers, timeout_s=5)


async def test_a_closed_client_refuses_requests(server: tuple[str, Seen]) -> None:
    url, _ = server
    c = HttpClient()
    await c.request("GET", f"{url}/x", timeout_s=5)
    await c.close()
    with pytest.raises(RuntimeError, match="closed"):
        await c.request("GET", f"{url}/x", timeout_s=5)


async def tls_answer(request: web.Request) -> web.Response:
    return web.json_response({"tls": request.secure})


async def test_https_with_a_trusted_certificate_and_refusal_of_an_untrusted_one() -> None:
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    app = web.Application()
    app.router.add_get("/", tls_answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0, ssl_context=server_context).start()
    url = f"https://127.0.0.1:{runner.addresses[0][1]}/"
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    try:
        async with HttpClient(ssl_context=trusting) as c:
            assert (await c.request("GET", url, timeout_s=5)).body == b'{"tls": true}'
        async with HttpClient() as c:  # the system's trust store has never heard of this CA
            with pytest.raises(ExchangeError, match="certificate verify failed"):
                await c.request("GET", url, timeout_s=5)
    finally:
        await runner.cleanup()


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
    except OSError:
        return False
    return True


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="no IPv6 loopback on this machine")
async def test_an_ipv6_address_is_bracketed_in_the_host_header(client: HttpClient) -> None:
    app = web.Application()
    app[SEEN] = seen = Seen()
    app.router.add_route("*", "/{tail:.*}", echo)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "::1", 0).start()
    port = runner.addresses[0][1]
    try:
        assert (await client.request("GET", f"http://[::1]:{port}/v6", timeout_s=5)).status == 201
    finally:
        await runner.cleanup()
    assert seen.requests[0]["headers"]["Host"] == f"[::1]:{port}"
