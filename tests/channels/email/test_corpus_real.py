"""Real mail from public test sets (corpus_real/, sources and licences in its README),
sent through the embedded SMTP server as it is: nothing crashes, nothing gets a 4xx,
automatic mail is never stored or answered, and replies are cut as expected."""

from __future__ import annotations

import json
import re
import smtplib
from pathlib import Path
from typing import Any

import pytest

from gateway.models import Direction, Identity, IdentityKind
from tests.channels.email.conftest import Mailer, OpenMailer
from tests.support.brains import EchoBrain

CORPUS = Path(__file__).parent / "corpus_real"
EXPECTED: dict[str, Any] = json.loads((CORPUS / "expected.json").read_text("utf-8"))
ENVELOPE = "relay-test@corpus.example"  # not null: automatic mail is found by its headers
NO_LIMITS = {
    "email_replies_per_hour": 1000,
    "email_replies_per_domain_per_hour": 100_000,
    "email_replies_total_per_hour": 1_000_000,
}


def files(folder: str, pattern: str) -> list[Path]:
    return sorted((CORPUS / folder).glob(pattern))


def expected(section: str, path: Path) -> dict[str, Any]:
    table: dict[str, Any] = EXPECTED[section]
    return {**table["default"], **table.get(path.name, {})}


async def send(mailer: Mailer, raw: bytes, mail_from: str = ENVELOPE) -> int:
    """The SMTP answer code the gateway gave to `raw`."""
    try:
        await mailer.send(raw, mail_from=mail_from)
    except smtplib.SMTPResponseException as exc:
        return exc.smtp_code
    return 250


def test_every_file_has_a_source_and_a_licence() -> None:
    readme = (CORPUS / "README.md").read_text("utf-8")
    licences = {p.name for p in (CORPUS / "LICENSES").iterdir()}
    corpus = [*files("auto", "*.eml"), *files("python", "*.eml"), *files("replies", "*.txt")]
    corpus += files("mail", "*.eml")
    assert len(corpus) >= 200
    for folder in ("auto", "python", "mail", "replies"):
        assert f"`{folder}/`" in readme
    for name in licences:
        assert name in readme
    for case in EXPECTED["replies"]:
        assert (CORPUS / "replies" / case).is_file()
    for section in ("auto", "python", "mail"):
        for case in EXPECTED[section]:
            assert case == "default" or (CORPUS / section / case).is_file(), case
    for case in EXPECTED["issue_cases"]:
        assert (CORPUS / "auto" / case).is_file()


async def test_bounces_auto_replies_and_list_mail_are_accepted_never_answered(
    open_mailer: OpenMailer,
) -> None:
    mailer = await open_mailer(brain=EchoBrain(), **NO_LIMITS)
    answered: list[str] = []
    for path in files("auto", "*.eml"):
        want = expected("auto", path)
        before = len(mailer.relay.mails)
        code = await send(mailer, path.read_bytes())
        assert code == want["smtp"], path.name
        if len(mailer.relay.mails) > before:
            answered.append(path.name)
    should = sorted(p.name for p in files("auto", "*.eml") if not expected("auto", p)["auto"])
    assert answered == should
    metrics = await (await mailer.client.get("/metrics")).text()
    dropped = sum(
        float(line.rpartition(" ")[2])
        for line in metrics.splitlines()
        if line.startswith("gateway_email_automatic_dropped_total{")
    )
    assert dropped == len(files("auto", "*.eml")) - len(should)


@pytest.mark.parametrize("folder", ["python", "mail"])
async def test_odd_and_malformed_mime_never_gets_a_4xx(
    open_mailer: OpenMailer, folder: str
) -> None:
    mailer = await open_mailer(brain=EchoBrain(), **NO_LIMITS)
    answered: list[str] = []
    for path in files(folder, "*.eml"):
        want = expected(folder, path)
        before = len(mailer.relay.mails)
        code = await send(mailer, path.read_bytes())
        assert code == want["smtp"], path.name
        if len(mailer.relay.mails) > before:
            answered.append(path.name)
            # The echo of what was stored: no replacement character that the mail
            # itself does not hold (each charset decoded, none guessed wrong).
            echo = mailer.relay.mails[-1].get_body(("plain",))
            assert echo is not None
            if b"\xef\xbf\xbd" not in path.read_bytes():
                assert "\ufffd" not in str(echo.get_content()), path.name
    # Every mail a person wrote is answered, once: a mail repeating the Message-ID of
    # one already stored is a retry (several of these files share one).
    should, seen = [], set()
    for p in files(folder, "*.eml"):
        found = re.search(rb"(?im)^message-id:\s*(<[^>]+>)", p.read_bytes())
        stored = expected(folder, p)["smtp"] == 250 and not expected(folder, p)["auto"]
        if not stored or (found and found.group(1) in seen):
            continue
        if found:
            seen.add(found.group(1))
        should.append(p.name)
    assert answered == should


async def test_replies_in_many_languages_are_cut_from_their_quotes(
    open_mailer: OpenMailer,
) -> None:
    mailer = await open_mailer(brain=EchoBrain(), **NO_LIMITS)
    for n, (name, want) in enumerate(sorted(EXPECTED["replies"].items())):
        sender = f"customer{n}@example.org"
        body = (CORPUS / "replies" / name).read_bytes().replace(b"\r\n", b"\n")
        raw = (
            f"From: Customer {n} <{sender}>\nTo: support@example.com\nSubject: Re: question\n"
            f"Message-ID: <corpus-{n}@example.org>\nMIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\n"
        ).encode() + body
        assert await send(mailer, raw, mail_from=sender) == 250, name
        customer = await mailer.store.find_customer(Identity(kind=IdentityKind.EMAIL, value=sender))
        assert customer is not None, name
        stored = [
            m.text
            for m in await mailer.store.history(customer.id)
            if m.direction is Direction.INBOUND
        ]
        assert len(stored) == 1, name
        for phrase in want["contains"]:
            assert phrase in stored[0], (name, phrase, stored[0])
        for phrase in want["excludes"]:
            assert phrase not in stored[0], (name, phrase, stored[0])
