"""STARTTLS on the embedded SMTP server: a self-signed certificate made here with the
`openssl` command, and real `smtplib` clients that verify it."""

from __future__ import annotations

import asyncio
import shutil
import smtplib
import ssl
import subprocess
from pathlib import Path

import pytest

from gateway.app import DISPATCHER, create_app
from gateway.errors import ConfigError
from gateway.models import Identity, IdentityKind
from gateway.settings import load_settings
from tests.channels.email.conftest import SUPPORT, Mailer, OpenMailer
from tests.support.brains import EchoBrain

JANE = "jane.doe@gmail.com"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (cert.pem, key.pem)."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed: no certificate to test with")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-nodes", "-days", "2", "-subj", "/CN=localhost", "-addext",
         "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    return cert, key


def trusting(cert: Path) -> ssl.SSLContext:
    """A client context that trusts only the test certificate (and checks the host)."""
    return ssl.create_default_context(cafile=str(cert))


async def deliver(mailer: Mailer, mail: bytes, *, tls: ssl.SSLContext | None) -> tuple[bool, str]:
    """Send `mail` from JANE with smtplib, after STARTTLS when `tls`; (offered, cipher)."""

    def run() -> tuple[bool, str]:
        with smtplib.SMTP("127.0.0.1", mailer.port, timeout=10) as smtp:
            smtp.ehlo()
            offered = smtp.has_extn("starttls")
            cipher = ""
            if tls is not None:
                smtp.starttls(context=tls)
                sock = smtp.sock
                assert isinstance(sock, ssl.SSLSocket)
                cipher = sock.version() or ""
            smtp.sendmail(JANE, [SUPPORT], mail)
            return offered, cipher

    got = await asyncio.to_thread(run)
    await mailer.app[DISPATCHER].drain()
    return got


async def test_starttls_is_offered_and_mail_over_it_is_answered(
    open_mailer: OpenMailer, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    mailer = await open_mailer(brain=EchoBrain(), email_tls_cert=cert, email_tls_key=key)
    msg = mailer.compose(JANE, "hello over TLS")
    offered, version = await deliver(mailer, msg.as_bytes(), tls=trusting(cert))
    assert offered and version.startswith("TLSv1.")
    jane = await mailer.store.find_customer(Identity(kind=IdentityKind.EMAIL, value=JANE))
    assert jane is not None
    assert (await mailer.store.history(jane.id))[0].text == "hello over TLS"
    assert len(mailer.relay.mails) == 1
    # Plain mail is still accepted unless TLS is required.
    await deliver(mailer, mailer.compose(JANE, "and in the clear").as_bytes(), tls=None)
    assert len(await mailer.store.history(jane.id)) == 4


async def test_required_starttls_refuses_plain_mail(
    open_mailer: OpenMailer, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    mailer = await open_mailer(
        brain=EchoBrain(), email_tls_cert=cert, email_tls_key=key, email_require_starttls=True
    )
    with pytest.raises(smtplib.SMTPException) as refused:
        await deliver(mailer, mailer.compose(JANE, "in the clear").as_bytes(), tls=None)
    assert getattr(refused.value, "smtp_code", None) == 530
    assert await mailer.store.find_customer(Identity(kind=IdentityKind.EMAIL, value=JANE)) is None
    await deliver(mailer, mailer.compose(JANE, "over TLS").as_bytes(), tls=trusting(cert))
    assert len(mailer.relay.mails) == 1


async def test_without_a_certificate_no_starttls_is_offered(mailer: Mailer) -> None:
    offered, _ = await deliver(mailer, mailer.compose(JANE, "hi").as_bytes(), tls=None)
    assert not offered


def test_a_certificate_without_its_key_names_the_missing_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="GATEWAY_EMAIL_TLS_KEY must be set too"):
        load_settings(data_dir=tmp_path, email_tls_cert=tmp_path / "cert.pem")
    with pytest.raises(ConfigError, match="GATEWAY_EMAIL_REQUIRE_STARTTLS needs"):
        load_settings(data_dir=tmp_path, email_require_starttls=True)


def test_missing_unreadable_or_wrong_files_stop_start_up_naming_the_setting(
    tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    base = {"data_dir": tmp_path, "email_address": SUPPORT, "email_listen": "127.0.0.1:0"}
    missing = tmp_path / "nowhere.pem"
    with pytest.raises(ConfigError, match=r"GATEWAY_EMAIL_TLS_KEY: cannot read .*nowhere\.pem"):
        create_app(load_settings(**base, email_tls_cert=cert, email_tls_key=missing))
    folder = tmp_path / "a-folder.pem"
    folder.mkdir()
    with pytest.raises(ConfigError, match="GATEWAY_EMAIL_TLS_CERT: cannot read"):
        create_app(load_settings(**base, email_tls_cert=folder, email_tls_key=key))
    # Swapped: each file reads, but they are not a certificate and its key.
    with pytest.raises(ConfigError, match="GATEWAY_EMAIL_TLS_CERT and GATEWAY_EMAIL_TLS_KEY"):
        create_app(load_settings(**base, email_tls_cert=key, email_tls_key=cert))
