"""Bodies that cannot be decoded get a clear 4xx on every form endpoint, never a 500
(gateway/http_input.py): the real app, requests as a fuzzer would send them."""

from __future__ import annotations

import asyncio
import gzip
import logging
import sys
import zlib
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.http_exceptions import LineTooLong
from aiohttp.test_utils import TestClient

from channels.twilio.signature import SIGNATURE_HEADER
from gateway.app import create_app
from gateway.http_input import MalformedRequestLog
from tests.channels.sms.texting import sms_settings
from tests.support.brains import EchoBrain

Client = TestClient[Any, Any]

TWILIO_FORMS = [
    "/twilio/voice",
    "/twilio/voice/status",
    "/twilio/sms",
    "/twilio/sms/status",
    "/twilio/transfer/7/rep-status",
    "/twilio/transfer/7/answer",
    "/twilio/transfer/7/conference",
    "/twilio/transfer/7/callback",
]
FORM = "application/x-www-form-urlencoded"
BAD_BODIES = [
    ({"Content-Type": FORM}, b"From=%2B1555&Body=\xff\xfe\xfa"),  # not UTF-8
    ({"Content-Type": FORM + "; charset=no-such-charset"}, b"Body=hi"),
    ({"Content-Type": FORM + "; charset=rot13"}, b"Body=hi"),  # a codec, not a charset
    (
        {"Content-Type": "multipart/form-data; boundary=xx"},
        b'--xx\r\nContent-Disposition: form-data; name="Body"\r\n\r\ntrunc',
    ),
    ({"Content-Type": "multipart/form-data"}, b"no boundary"),
    ({"Content-Type": FORM, "Content-Encoding": "gzip"}, b"not gzip at all"),
    ({"Content-Type": FORM, "Content-Encoding": "deflate"}, b"\x00\x01garbage"),
]


@pytest.fixture
async def client(tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]) -> Client:
    settings = sms_settings(tmp_path, "http://127.0.0.1:9")  # the REST API is never reached
    return await aiohttp_client(create_app(settings, brain=EchoBrain()))


@pytest.mark.parametrize("path", TWILIO_FORMS)
async def test_undecodable_twilio_forms_get_4xx(
    client: Client, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    for headers, body in BAD_BODIES:
        signed = {**headers, SIGNATURE_HEADER: "bm90IGEgcmVhbCBzaWduYXR1cmU="}
        resp = await client.post(path, data=body, headers=signed)
        assert resp.status == 400, (path, headers, resp.status)
        resp = await client.post(path, data=body, headers=headers)
        assert resp.status in (400, 403), (path, headers, resp.status)
    # A well-formed form with a wrong signature is still refused as forged.
    resp = await client.post(path, data={"Body": "hi"}, headers={SIGNATURE_HEADER: "AAAA"})
    assert resp.status == 403
    # Nothing was an unhandled exception (aiohttp logs one when it cannot drain a body).
    print("RECORDS", [(r.name, r.levelname, r.getMessage()) for r in caplog.records])
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_console_login_with_an_undecodable_body_is_4xx(client: Client) -> None:
    for headers, body in BAD_BODIES:
        resp = await client.post("/console/login", data=body, headers=headers)
        assert resp.status == 400, (headers, resp.status)  # compressed ones: never read


async def test_compressed_bodies_are_refused_unread(client: Client) -> None:
    # 64 KiB of deflate that inflate to 64 MiB: aiohttp would inflate it on the event
    # loop (draining it after any answer); refused before a byte of it is inflated.
    bomb = zlib.compress(b"A" * 64 * 1024 * 1024)
    for encoding, body in (("deflate", bomb), ("gzip", gzip.compress(b'{"username": "a"}'))):
        headers = {"Content-Type": "application/json", "Content-Encoding": encoding}
        resp = await client.post("/console/login", data=body, headers=headers)
        assert resp.status == 400
    assert (await client.get("/healthz")).status == 200


async def test_rating_form_with_an_undecodable_body_is_4xx(client: Client) -> None:
    for headers, body in BAD_BODIES:
        resp = await client.post("/rate/sometoken", data=body, headers=headers)
        assert 400 <= resp.status < 500, (headers, resp.status)


async def test_a_client_leaving_mid_body_is_no_error_of_ours(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Served as `gateway serve` serves (web.run_app's defaults: the handler is not
    # cancelled when its client leaves; the test client's server would cancel it).
    app = create_app(sms_settings(tmp_path, "http://127.0.0.1:9"), brain=EchoBrain())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        port = runner.addresses[0][1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(b"POST /console/login HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nshort")
        await writer.drain()
        await asyncio.sleep(0.3)  # the handler waits for the rest of the body
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.3)
    finally:
        await runner.cleanup()
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def test_malformed_http_is_one_info_line_not_an_error_traceback() -> None:
    try:
        raise LineTooLong(b"a" * 20, 8190)
    except LineTooLong:
        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s",
            ("127.0.0.1",), sys.exc_info(),
        )  # fmt: skip
    assert MalformedRequestLog().filter(record)
    assert record.levelno == logging.INFO and record.exc_info is None
    assert "Error handling request from 127.0.0.1: malformed HTTP (400)" in record.getMessage()
    other = logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "boom", None, None)
    assert MalformedRequestLog().filter(other) and other.levelno == logging.ERROR
