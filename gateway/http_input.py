"""Reading request bodies safely: a body that cannot be decoded is the client's
error (400), never ours (500).

- `bad_body_middleware`: reads every request body (bounded by the app's
  `client_max_size`: 413 above it) before the handler runs;
  a compressed body (`Content-Encoding`) is refused (400) unread. aiohttp reports a
  body it cannot decode (a garbage `Content-Encoding: gzip` body, a broken
  chunked encoding) as `RequestPayloadError` from whatever reads it, and a
  handler that answers without reading (a 403) would leave aiohttp to find it
  while draining, which drops the connection with an "unhandled exception";
  read first, such a body is a plain 400 on every route.
- `read_form`: the one reader of form posts (Twilio's webhooks, the rating
  page). Only `application/x-www-form-urlencoded` is read (Twilio and browser
  forms send nothing else; multipart would spool uploads to disk on the event
  loop); an undecodable body, an unknown charset or a malformed form is 400.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from multidict import MultiDict, MultiDictProxy

from gateway.errors import NotFoundError

log = logging.getLogger("gateway.http_input")

FORM_TYPE = "application/x-www-form-urlencoded"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def bad_body_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    """400 for a request body that could not be read (decoded) at all, and for a
    compressed one (unread)."""
    if not request.body_exists:
        return await handler(request)
    if request.headers.get("Content-Encoding", "identity").strip().lower() != "identity":
        # No client of ours compresses what it sends (Twilio, browsers, the console),
        # and aiohttp inflates as it reads, on the event loop: a few KiB of deflate
        # that inflate to 64 MiB froze the loop for most of a second while drained.
        return _close(request, 400, "compressed request bodies are not accepted")
    try:
        await request.read()  # cached: the handler's read(), json() or post() reuse it
    except web.RequestPayloadError as exc:
        log.info("refused %s %s: unreadable body: %s", request.method, request.path, exc)
        return _close(request, 400, "the request body could not be decoded")
    except ConnectionResetError:
        # The client left before sending the body it announced: nobody to answer
        # (aiohttp would log this as an error of ours).
        log.info("%s %s: the client left before its body arrived", request.method,
                 request.path)  # fmt: skip
        return _close(request, 400, "the request body did not arrive")
    return await handler(request)


def _close(request: web.Request, status: int, text: str) -> web.Response:
    # The rest of the body is not read: end the stream here (aiohttp would drain it
    # after the answer, inflating or failing to parse it) and close the connection.
    request.content.feed_eof()
    response = web.Response(status=status, text=text)
    response.force_close()
    return response


async def read_form(request: web.Request) -> MultiDictProxy[str]:
    """The urlencoded form of a POST: 400 for another content type (with the type to
    send) and when it cannot be decoded (413 above the app's `client_max_size`, from aiohttp)."""
    if request.body_exists and request.content_type != FORM_TYPE:
        raise web.HTTPBadRequest(text=f"send {FORM_TYPE}")
    try:
        form = await request.post()
    except (UnicodeDecodeError, LookupError, ValueError) as exc:
        # An undecodable body, an unknown charset (LookupError), a malformed form.
        log.info("refused %s %s: unreadable form: %s", request.method, request.path, exc)
        raise web.HTTPBadRequest(text="the form could not be decoded") from None
    fields: MultiDict[str] = MultiDict()
    for key, value in form.items():
        if not isinstance(value, str):  # not possible for urlencoded; keeps the type narrow
            raise web.HTTPBadRequest(text="file uploads are not accepted")
        fields.add(key, value)
    return MultiDictProxy(fields)


class MalformedRequestLog(logging.Filter):
    """On `aiohttp.server`: a request aiohttp could not even parse (a bad request
    line, an oversized header, a broken chunk) is answered 400 by aiohttp, which
    logs it as an ERROR with a traceback; every scanner on the internet would fill
    the log with those. They become one INFO line without the traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError):
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg = f"{record.getMessage()}: malformed HTTP ({exc.code}): {exc.message}"[:300]
            record.args, record.exc_info, record.exc_text = None, None, None
        return True


def quiet_malformed_requests() -> None:
    """Install `MalformedRequestLog` (once) on aiohttp's server logger."""
    logger = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, MalformedRequestLog) for f in logger.filters):
        logger.addFilter(MalformedRequestLog())


DB_INT_MAX = 2**63 - 1  # the largest id a database integer column holds


def path_id(request: web.Request, name: str) -> int:
    """The database id in the URL's `name` part: NotFoundError (404) for one that is not
    a number or that no database column could hold (it would overflow the driver)."""
    try:
        value = int(request.match_info[name])
    except ValueError as exc:
        raise NotFoundError(f"no such {name}") from exc
    if not 0 <= value <= DB_INT_MAX:
        raise NotFoundError(f"no such {name}")
    return value


__all__ = [
    "DB_INT_MAX",
    "FORM_TYPE",
    "MalformedRequestLog",
    "bad_body_middleware",
    "path_id",
    "quiet_malformed_requests",
    "read_form",
]
