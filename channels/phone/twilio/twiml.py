"""The TwiML the voice webhook answers with, built with `twilio.twiml.voice_response`.

`<Connect><Stream>` opens a bidirectional Media Stream: Twilio sends the
caller's audio to our websocket and plays what we send back. `<Parameter>`s
travel to the stream's `start` message as `customParameters` (the stream URL
itself may not carry a query string). The call goes on with the TwiML after
`</Connect>` once the websocket closes; there is none, so closing the stream
ends the call.
"""

from __future__ import annotations

from collections.abc import Mapping

from twilio.twiml.voice_response import Connect, Stream, VoiceResponse

CONTENT_TYPE = "text/xml"

UNAVAILABLE_TEXT = (
    "Sorry, our phone line is not available right now. Please try again later, or chat"
    " with us on our website."
)


def connect_stream(stream_url: str, parameters: Mapping[str, str]) -> str:
    """`<Response><Connect><Stream url=...>` with one `<Parameter>` per item."""
    stream = Stream(url=stream_url)
    for name, value in parameters.items():
        stream.parameter(name=name, value=value)
    connect = Connect()
    connect.append(stream)
    response = VoiceResponse()
    response.append(connect)
    return str(response.to_xml())


def unavailable(text: str = UNAVAILABLE_TEXT) -> str:
    """`<Response><Say>` an apology, then hang up: the line cannot take calls now."""
    response = VoiceResponse()
    response.say(text)
    response.hangup()
    return str(response.to_xml())


def empty() -> str:
    """An empty `<Response/>` (do nothing more)."""
    return str(VoiceResponse().to_xml())


__all__ = ["CONTENT_TYPE", "UNAVAILABLE_TEXT", "connect_stream", "empty", "unavailable"]
