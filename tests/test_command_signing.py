"""Ed25519 Command signing: headers, the signed message, config errors, and on the wire."""

from __future__ import annotations

import asyncio
import base64
import calendar
import struct
from datetime import UTC, datetime

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from projectord.broker_resources import ensure_resources
from projectord.config import ConfigError, load_settings
from projectord.database import Writer, create_writer_engine
from projectord.migrations import upgrade_to_head
from projectord.scheduler.dispatch import Dispatcher
from projectord.scheduler.signing import (
    Signer,
    SigningKeyError,
    load_private_key,
    signed_message,
    signer_from_options,
)
from projectord.scheduler.waves import WaveSender
from projectord.schema import pending_waves

AT = datetime(2026, 11, 22, 12, 0, 0, 123000, tzinfo=UTC)


@pytest.fixture
def key_file(tmp_path):
    key = Ed25519PrivateKey.generate()
    path = tmp_path / "command.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path


def test_headers_verify_against_the_public_key(key_file):
    signer = signer_from_options(str(key_file), "ops-2026")
    body = b'{"id":"inv-hw"}'
    headers = signer.headers(body, AT)
    at_ms = int(headers["Kanade-Sig-At"])
    assert at_ms == calendar.timegm((2026, 11, 22, 12, 0, 0)) * 1000 + 123
    assert (headers["Kanade-Sig-Kid"], headers["Kanade-Sig-Alg"]) == ("ops-2026", "ed25519")
    signature = base64.b64decode(headers["Kanade-Sig"], validate=True)
    # Raises if the signature is not over at_ms (8 bytes, big-endian) + body.
    signer.key.public_key().verify(signature, struct.pack(">q", at_ms) + body)
    assert signed_message(body, at_ms)[:8] == at_ms.to_bytes(8, "big", signed=True)
    assert signer.identity.startswith("ops-2026:")


def test_no_key_means_no_signer():
    assert signer_from_options("", "") is None


@pytest.mark.parametrize("half", [("key", ""), ("", "kid")])
def test_a_half_configured_pair_is_refused(key_file, half):
    with pytest.raises(SigningKeyError, match="set both or neither"):
        signer_from_options(str(key_file) if half[0] else "", half[1])


def test_bad_key_files(tmp_path):
    with pytest.raises(SigningKeyError, match="missing.pem"):
        load_private_key(tmp_path / "missing.pem")
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(SigningKeyError, match="PEM"):
        load_private_key(junk)


def test_config_reports_signing_problems_as_config_errors(tmp_path, key_file):
    config = tmp_path / "kanade.toml"
    config.write_text(f'[scheduler]\nsigning_key_file = "{key_file}"\n')
    with pytest.raises(ConfigError, match="signing_kid"):
        load_settings(config, {})
    config.write_text(f'[scheduler]\nsigning_key_file = "{tmp_path}/nope.pem"\nsigning_kid = "k"\n')
    with pytest.raises(ConfigError, match="nope.pem"):
        load_settings(config, {})
    config.write_text(f'[scheduler]\nsigning_key_file = "{key_file}"\nsigning_kid = "k"\n')
    assert load_settings(config, {}).section("scheduler")["signing_kid"] == "k"


async def test_signed_and_unsigned_commands_on_the_wire(js, db_path, key_file, nc):
    """Signed: all four headers; unsigned: none at all."""
    await ensure_resources(js)
    engine = create_writer_engine(db_path)
    upgrade_to_head(engine)
    writer = Writer(engine)
    signer = Signer("k1", load_private_key(key_file))

    def queue(conn):
        conn.execute(
            pending_waves.insert(),
            [
                {
                    "exec_id": "e",
                    "subject": "commands.group.a",
                    "body": b"{}",
                    "due_at": "2000-01-01T00:00:00.000000+00:00",
                },
            ],
        )

    await writer.transaction(queue)
    await WaveSender(js, writer, asyncio.Event(), signer=signer).send_due()
    signed = await js.get_last_msg("EXEC", "commands.group.a")
    assert {"Kanade-Sig", "Kanade-Sig-Kid", "Kanade-Sig-Alg", "Kanade-Sig-At"} <= set(
        signed.headers
    )
    await writer.transaction(queue)
    await WaveSender(js, writer, asyncio.Event()).send_due()
    unsigned = await js.get_last_msg("EXEC", "commands.group.a")
    assert not unsigned.headers
    # The dispatch path signs the same way.
    await Dispatcher(js, writer, signer)._publish_all([("commands.pc.x", b'{"id":"j"}')])
    sent = await js.get_last_msg("EXEC", "commands.pc.x")
    at_ms = int(sent.headers["Kanade-Sig-At"])
    signature = base64.b64decode(sent.headers["Kanade-Sig"])
    signer.key.public_key().verify(signature, signed_message(sent.data, at_ms))
    writer.close()
