"""The IMAP poller against a local IMAP server (aioimaplib's own test server), with the
real app: unseen mail is stored, answered through the relay, then marked seen."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aioimaplib.imap_testing_server import ImapProtocol, Mail, MockImapServer

from channels.email.imap import ImapMailbox, ImapPoller
from channels.email.state import EMAIL
from gateway.app import DISPATCHER
from gateway.models import Identity, IdentityKind
from tests.channels.email.conftest import SUPPORT, OpenMailer
from tests.support.brains import EchoBrain

CORPUS = Path(__file__).parent / "corpus"


class UnseenProtocol(ImapProtocol):  # type: ignore[misc]
    """The test server, taught `SEARCH UNSEEN` (it knows `UNKEYWORD \\Seen` only)."""

    def search(self, tag: str, *args: str) -> Any:
        args = tuple(a for arg in args for a in (("UNKEYWORD", "\\Seen") if arg.upper() ==
                                                 "UNSEEN" else (arg,)))  # fmt: skip
        return super().search(tag, *args)


class ImapServer(MockImapServer):  # type: ignore[misc]
    def run_server(self, host: str = "127.0.0.1", port: int = 0, **_: Any) -> Any:
        def protocol() -> UnseenProtocol:
            proto = UnseenProtocol(self._server_state, 0, self.capabilities, self.loop)
            self._connections.append(proto)
            return proto

        return self.loop.create_server(protocol, host, port)


@pytest.fixture
async def imap() -> AsyncIterator[tuple[ImapServer, int]]:
    server = ImapServer(loop=asyncio.get_running_loop())
    listening = await server.run_server()
    yield server, listening.sockets[0].getsockname()[1]
    listening.close()
    await listening.wait_closed()


def deliver(server: ImapServer, raw: bytes) -> None:
    from email import message_from_bytes, policy

    msg = message_from_bytes(raw, policy=policy.default)
    server.receive(Mail(msg), imap_user=SUPPORT)


async def test_unseen_mail_is_stored_answered_and_marked_seen(
    open_mailer: OpenMailer, imap: tuple[ImapServer, int]
) -> None:
    server, port = imap
    mailer = await open_mailer(
        brain=EchoBrain(), email_listen="",
        email_imap=f"imap://{SUPPORT.replace('@', '%40')}:pw@127.0.0.1:{port}/INBOX",
        email_imap_interval_s=0.05,
    )  # fmt: skip
    state = mailer.app[EMAIL]
    assert state.poller is not None and state.port is None  # IMAP only, no SMTP server
    mailbox = ImapMailbox.from_settings(state.settings)
    assert mailbox is not None and mailbox.username == SUPPORT and mailbox.mailbox == "INBOX"
    msg = EmailMessage()
    msg["From"] = "Jane Doe <jane.doe@gmail.com>"
    msg["To"] = SUPPORT
    msg["Subject"] = "Order status"
    msg["Message-ID"] = "<imap-1@mail.gmail.com>"
    msg.set_content("Where is my order?")
    deliver(server, (CORPUS / "out_of_office.eml").read_bytes())  # automatic: not answered
    deliver(server, msg.as_bytes())

    async with asyncio.timeout(10):
        await mailer.relay.arrived.wait()
    await asyncio.sleep(0.3)  # several more polls: nothing is read twice
    await mailer.app[DISPATCHER].drain()

    jane = await mailer.store.find_customer(Identity(kind=IdentityKind.EMAIL,
                                                     value="jane.doe@gmail.com"))  # fmt: skip
    assert jane is not None
    history = await mailer.store.history(jane.id)
    assert [m.text for m in history] == ["Where is my order?", "echo: Where is my order?"]
    [reply] = mailer.relay.mails
    assert reply["In-Reply-To"] == "<imap-1@mail.gmail.com>"
    assert reply["Subject"] == "Re: Order status"
    assert reply["Auto-Submitted"] == "auto-replied"
    # Both mails were marked seen after they were taken.
    messages = server._server_state.get_mailbox_messages(SUPPORT, "INBOX")
    assert all("\\Seen" in m.flags for m in messages) and len(messages) == 2


async def test_an_unreachable_server_is_retried_quietly(tmp_path: Path) -> None:
    from gateway.settings import load_settings

    settings = load_settings(data_dir=tmp_path, email_address=SUPPORT,
                             email_imap="imap://u:p@127.0.0.1:1/INBOX")  # fmt: skip
    mailbox = ImapMailbox.from_settings(settings)
    assert mailbox is not None and (mailbox.port, mailbox.tls) == (1, False)
    poller = ImapPoller(mailbox, None, None, 0.01)  # type: ignore[arg-type]
    task = asyncio.create_task(poller.run())
    await asyncio.sleep(0.1)
    assert not task.done()  # connection refused is logged, and polling goes on
    task.cancel()
