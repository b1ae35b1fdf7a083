"""The sync job message schema."""

from __future__ import annotations

import base64
import json

import pytest

from shared.errors import InvalidInput
from shared.services.jobs import MAX_JOB_BYTES, decode_job, encode_job, job_from_push_message, push_message
from shared.services.ports import SyncJob


def test_round_trip() -> None:
    job = SyncJob("acme", "member_1.eu-x", "continuation")
    data = encode_job(job)
    assert json.loads(data) == {
        "v": 1,
        "tenantId": "acme",
        "memberId": "member_1.eu-x",
        "reason": "continuation",
    }
    assert decode_job(data) == job
    assert decode_job(data.decode()) == job


def test_reason_defaults_to_scheduled() -> None:
    assert decode_job(b'{"v":1,"tenantId":"t","memberId":"m"}') == SyncJob("t", "m", "scheduled")


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"not json",
        b"\xff\xfe",
        b"[1, 2]",
        b'{"tenantId":"t","memberId":"m"}',
        b'{"v":2,"tenantId":"t","memberId":"m"}',
        b'{"v":"1","tenantId":"t","memberId":"m"}',
        b'{"v":true,"tenantId":"t","memberId":"m"}',
        b'{"v":1,"memberId":"m"}',
        b'{"v":1,"tenantId":"t"}',
        b'{"v":1,"tenantId":7,"memberId":"m"}',
        b'{"v":1,"tenantId":"","memberId":"m"}',
        b'{"v":1,"tenantId":"t","memberId":"a/b"}',
        b'{"v":1,"tenantId":"t","memberId":"m","reason":"because"}',
        b'{"v":1,"tenantId":"t","memberId":"m","reason":3}',
    ],
)
def test_malformed_messages_are_invalid_input(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        decode_job(data)


def test_oversize_message_is_refused_before_parsing() -> None:
    data = json.dumps({"v": 1, "tenantId": "t", "memberId": "m", "pad": "x" * MAX_JOB_BYTES}).encode()
    with pytest.raises(InvalidInput, match="too large"):
        decode_job(data)


def test_errors_do_not_echo_the_payload() -> None:
    with pytest.raises(InvalidInput) as caught:
        decode_job(b'{"v":1,"tenantId":"secret-looking-value/x","memberId":"m"}')
    assert "secret-looking-value" not in str(caught.value)


def test_job_from_push_message_decodes_base64_data() -> None:
    job = SyncJob("acme", "m-1", "manual")
    envelope = {"message": {"data": base64.b64encode(encode_job(job)).decode(), "messageId": "7"}}
    message = push_message(envelope)
    assert message["messageId"] == "7"
    assert job_from_push_message(message) == job


@pytest.mark.parametrize("envelope", [None, b"raw", {}, {"message": None}, {"message": "text"}])
def test_push_message_without_a_message_is_empty(envelope: object) -> None:
    assert push_message(envelope) == {}


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ({}, "has no data"),
        ({"data": 12}, "has no data"),
        ({"data": "not base64!"}, "not base64"),
        ({"data": base64.b64encode(b"not json").decode()}, "not UTF-8 JSON"),
    ],
)
def test_job_from_push_message_rejects_unreadable_messages(message: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidInput, match=reason):
        job_from_push_message(message)
