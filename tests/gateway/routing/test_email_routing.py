"""A rep answers an email customer: the reply reaches the relay in the thread."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from gateway.app import create_app
from gateway.settings import load_settings
from tests.channels.email.conftest import SUPPORT, CatchingRelay, Mailer
from tests.gateway.routing.desk import Desk, HandoverBrain

JANE = "jane@example.net"


async def test_a_rep_reply_goes_out_in_the_customers_email_thread(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[TestClient[Any, Any]]]
) -> None:
    relay = CatchingRelay()
    relay_url = await relay.start()
    try:
        settings = load_settings(data_dir=tmp_path, email_address=SUPPORT,
                                 email_listen="127.0.0.1:0", email_relay=relay_url)  # fmt: skip
        brain = HandoverBrain()
        client = await aiohttp_client(create_app(settings, brain=brain))
        desk, mailer = Desk(client, brain), Mailer(client, relay)
        rep = await desk.rep("ann", "billing")
        first = mailer.compose(JANE, "human billing", subject="Refund")
        await mailer.send(first)
        offer_id, conv_id = await desk.offer_for(rep.id)
        await desk.service.accept(rep.id, offer_id)
        before = len(relay.mails)
        await desk.service.reply(rep.id, conv_id, "Ann here: your refund is approved.")
        assert len(relay.mails) == before + 1
        mail = relay.mails[-1]
        assert mail["In-Reply-To"] == first["Message-ID"] or first["Message-ID"] in str(
            mail["References"]
        )
        assert mail["Subject"] == "Re: Refund"
        assert "your refund is approved" in mail.get_content()
        assert relay.envelopes[-1] == (SUPPORT, [JANE])

        await desk.service.close(rep.id, conv_id, "resolved")
        link = re.search(r"/rate/\S+", relay.mails[-1].get_content())
        assert link is not None
        assert (await client.post(link.group(0), data={"score": "5"})).status == 200
    finally:
        await relay.close()
