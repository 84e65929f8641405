"""Calls across several nodes: two real `gateway serve` processes with the phone
channel on (test Twilio credentials, a random-weight Whisper, the real VAD and
espeak-ng), one PostgreSQL database, one Redis bus, and a local stand-in for
Twilio's REST API. Both nodes sit behind one public URL (a load balancer), so
Twilio signs the same URLs whichever node a request lands on.

- a call's media stream is on node A while its status callback lands on node B:
  node A ends the call cleanly and stores its end;
- a call on node A is warm-transferred while every Twilio request of the
  transfer (the rep's call status, the rep's key press, the brief's audio, the
  conference's events) lands on node B: each reaches A's transfer, and B answers
  with A's TwiML.
"""

from __future__ import annotations

import asyncio
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from channels.phone.tools.simulator import TwilioSimulator
from channels.twilio.signature import SIGNATURE_HEADER, TwilioSignatures
from gateway.models import AuthorKind, ConversationState, Event, Identity, IdentityKind
from gateway.store.postgres import PostgresStore
from tests.support import services
from tests.support.nodes import Cluster, Node
from tests.support.twilio_rest import ACCOUNT_SID, AUTH_TOKEN, FakeTwilioRest
from tests.support.whisper_model import build_random_whisper

PUBLIC_URL = "https://support.example.com"  # the load balancer both nodes sit behind
REP = "+15550001111"
CALLER_ID = "+15550009999"
JANE = "+15551234567"


def signatures() -> TwilioSignatures:
    return TwilioSignatures(AUTH_TOKEN, PUBLIC_URL, "wss://support.example.com")


@pytest.fixture(scope="module")
def random_whisper(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_random_whisper(tmp_path_factory.mktemp("whisper") / "tiny.en", "tiny.en")


@pytest.fixture
async def cluster(
    pg_url: str, redis_url: str, tmp_path: Path, random_whisper: Path, twilio_rest: FakeTwilioRest
) -> AsyncIterator[Cluster]:
    api = await twilio_rest.start()
    nodes = Cluster(pg_url, redis_url, services.redis_prefix(), tmp_path, env={
        "GATEWAY_PUBLIC_URL": PUBLIC_URL,
        "GATEWAY_STT_MODEL": str(random_whisper),
        "GATEWAY_STT_WORKERS": "1",
        "GATEWAY_STT_CPU_THREADS": "1",
        "GATEWAY_TTS_RATE": "400",  # quick tests: the agent talks fast
        "GATEWAY_TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "GATEWAY_TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "GATEWAY_TWILIO_API_URL": api,
        "GATEWAY_TRANSFER_NUMBERS": REP,
        "GATEWAY_TRANSFER_CALLER_ID": CALLER_ID,
    })  # fmt: skip
    yield nodes
    nodes.stop()


async def twilio_post(node: Node, url: str, params: dict[str, str]) -> aiohttp.ClientResponse:
    """POST `params` to the public `url` as Twilio does (signed), landing on `node`."""
    assert url.startswith(PUBLIC_URL), url
    headers = {SIGNATURE_HEADER: signatures().sign(url, params)}
    async with aiohttp.ClientSession() as session:
        response = await session.post(
            node.http + url.removeprefix(PUBLIC_URL), data=params, headers=headers
        )
        await response.read()
        return response


async def stored_events(pg_url: str, caller: str, kind: str, within_s: float) -> list[Event]:
    """The events of `kind` on the caller's conversation, once there is one."""
    store = await PostgresStore.open(pg_url)
    phone = Identity(kind=IdentityKind.PHONE, value=caller)
    try:
        async with asyncio.timeout(within_s):
            while True:
                customer = await store.find_customer(phone)
                if customer is not None:
                    [last] = await store.history(customer.id, limit=1)
                    found = [e for e in await store.events(last.conversation_id) if e.kind == kind]
                    if found:
                        return found
                await asyncio.sleep(0.2)
    finally:
        await store.close()


async def test_a_status_callback_on_node_b_ends_the_call_streaming_to_node_a(
    cluster: Cluster, pg_url: str
) -> None:
    a = await cluster.start("a")
    b = await cluster.start("b")
    sim = TwilioSimulator(a.http, signatures(), account_sid=ACCOUNT_SID, caller=JANE)
    assert await sim.start_call()
    async with asyncio.timeout(30):  # greeted: the call runs on A
        await sim.until(lambda: bool(sim.received.marks))
        await sim.wait_quiet()
    assert not sim.closed

    # Twilio reports the end of the call to the load balancer, which picks B.
    status = {"AccountSid": ACCOUNT_SID, "CallSid": sim.call_sid, "CallStatus": "completed",
              "From": JANE, "To": "+15550001234", "Direction": "inbound",
              "ApiVersion": "2010-04-01", "CallDuration": "9"}  # fmt: skip
    answered = await twilio_post(b, PUBLIC_URL + "/twilio/voice/status", status)
    assert answered.status == 204

    # A closes the stream and ends the call's session: its end is stored.
    async with asyncio.timeout(20):
        await sim.until(lambda: sim.closed)
    [ended] = await stored_events(pg_url, JANE, "phone.call_ended", within_s=20)
    assert ended.data["call_sid"] == sim.call_sid
    assert ended.data["reason"] == "Twilio reports the call completed"
    store = await PostgresStore.open(pg_url)
    try:
        said = await store.conversation_messages(ended.conversation_id)
        assert said and said[0].author is AuthorKind.AGENT  # the greeting, heard on A
        assert [e.kind for e in await store.events(ended.conversation_id)].count(
            "phone.call_started"
        ) == 1
    finally:
        await store.close()
    # Neither node died on the way.
    assert a.proc.poll() is None and b.proc.poll() is None


def _gather_of(twiml: str) -> tuple[str, str]:
    gather = ET.fromstring(twiml).find("./Gather")
    assert gather is not None, twiml
    play = gather.find("./Play")
    assert play is not None and play.text, twiml
    return gather.get("action", ""), play.text


def _conference_of(twiml: str) -> ET.Element:
    found = ET.fromstring(twiml).find("./Dial/Conference")
    assert found is not None, twiml
    return found


async def test_a_warm_transfer_on_node_a_is_driven_by_twilio_requests_landing_on_node_b(
    cluster: Cluster, pg_url: str, twilio_rest: FakeTwilioRest
) -> None:
    a = await cluster.start("a")
    b = await cluster.start("b")
    sim = TwilioSimulator(a.http, signatures(), account_sid=ACCOUNT_SID, caller=JANE)
    twilio_rest.live.add(sim.call_sid)
    moved: list[asyncio.Task[None]] = []

    def redirected(call_sid: str, twiml: str) -> None:
        # Twilio runs the new TwiML at once: the call's <Connect><Stream> stops.
        if call_sid == sim.call_sid and not moved:
            moved.append(asyncio.create_task(sim.hang_up()))

    twilio_rest.on_redirect = redirected
    assert await sim.start_call()
    async with asyncio.timeout(30):
        await sim.until(lambda: bool(sim.received.marks))
        await sim.wait_quiet()
    await sim.press("0")  # a person, please
    await twilio_rest.wait_until(lambda: len(twilio_rest.created) == 1, within_s=40)
    await asyncio.gather(*moved)
    [(_, hold)] = [(sid, twiml) for sid, twiml in twilio_rest.redirects if sid == sim.call_sid]
    held = _conference_of(hold)

    # The rep's phone rings (placed by A); everything Twilio asks next lands on B.
    [rep] = twilio_rest.created
    assert (rep.form["To"], rep.form["From"]) == (REP, CALLER_ID)
    answer_url, brief_url = _gather_of(rep.form["Twiml"])
    async with aiohttp.ClientSession() as session:
        # Twilio fetches the brief it plays to the rep (rendered on A) from B.
        async with session.get(b.http + brief_url.removeprefix(PUBLIC_URL)) as got:
            assert got.status == 200, await got.text()
            assert got.content_type == "audio/wav"
            wav = await got.read()
        async with session.get(a.http + brief_url.removeprefix(PUBLIC_URL)) as got:
            assert await got.read() == wav
    assert wav.startswith(b"RIFF") and len(wav) > 8000
    status = {"AccountSid": ACCOUNT_SID, "CallSid": rep.sid, "CallStatus": "in-progress",
              "From": CALLER_ID, "To": REP, "Direction": "outbound-api",
              "ApiVersion": "2010-04-01", "SequenceNumber": "1"}  # fmt: skip
    assert (await twilio_post(b, rep.form["StatusCallback"], status)).status == 204
    # The rep presses 1 on B's side: B answers with the TwiML A's transfer wrote.
    pressed = {"AccountSid": ACCOUNT_SID, "CallSid": rep.sid, "CallStatus": "in-progress",
               "Digits": "1", "FinishedOnKey": ""}  # fmt: skip
    joined = await twilio_post(b, answer_url, pressed)
    assert joined.status == 200
    assert _conference_of(await joined.text()).text == held.text
    # The caller hangs up at the end; the conference tells B.
    leave = {"AccountSid": ACCOUNT_SID, "ConferenceSid": "CF" + "3" * 32,
             "FriendlyName": held.text or "", "StatusCallbackEvent": "participant-leave",
             "CallSid": sim.call_sid, "SequenceNumber": "1"}  # fmt: skip
    assert (await twilio_post(b, held.get("statusCallback", ""), leave)).status == 204

    await stored_events(pg_url, JANE, "transfer.completed", within_s=20)
    store = await PostgresStore.open(pg_url)
    try:
        [started] = await stored_events(pg_url, JANE, "transfer.requested", within_s=1)
        steps = [e.kind for e in await store.events(started.conversation_id)
                 if e.kind.startswith("transfer.")]  # fmt: skip
        assert steps == ["transfer.requested", "transfer.ringing", "transfer.briefing",
                         "transfer.connected", "transfer.completed"]  # fmt: skip
        # A configured line (not a rep in routing) took it: the conversation closes
        # once that call is over, rather than staying with nobody able to close it.
        await stored_events(pg_url, JANE, "call.closed", within_s=10)
        conversation = await store.get_conversation(started.conversation_id)
        assert conversation.state is ConversationState.CLOSED
    finally:
        await store.close()
    assert a.proc.poll() is None and b.proc.poll() is None
