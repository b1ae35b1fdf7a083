"""What a bad id, an out-of-range setting or an odd message can do: each is refused where it
enters (import, jobs, links, events, CLI), with a clear error and no side effect. Pure."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.firestore.document_events import directory_change_from_event
from shared.domain import ids, links
from shared.domain.directory_file import parse_directory
from shared.domain.ids import interaction_id
from shared.domain.models import TenantSettings
from shared.domain.settings import settings_from_document
from shared.errors import InvalidInput
from shared.services.jobs import decode_job, job_from_push_message, push_message

BAD_IDS = ["a/b", "..", ".", "__x__", "____", "a\x1fb", "tab\t", "é", "a" * 129, "", "a b", "a\nb"]
GOOD_IDS = ["acme", "m-anna", "acc_1.eu", "A" * 128, "_x_", "__x", "x__", "__", "a..b"]
NOW = datetime(2026, 11, 24, 12, tzinfo=UTC)
KEY = "k" * 32


@pytest.mark.parametrize("value", BAD_IDS)
def test_an_id_outside_the_allowed_characters_length_or_form_is_refused(value: str) -> None:
    assert not ids.is_valid_id(value)
    assert ids.id_problem(value) is not None


@pytest.mark.parametrize("value", GOOD_IDS)
def test_ids_of_letters_digits_dots_dashes_and_underscores_are_accepted(value: str) -> None:
    assert ids.is_valid_id(value)


def test_derived_ids_are_injective_because_an_id_cannot_hold_their_separator() -> None:
    # ("k\x1fa", "b") and ("k", "a\x1fb") would join to the same text: the second account id is
    # refused wherever ids enter, so the last separator in a joined key is always the join.
    assert interaction_id("k\x1fa", "b") == interaction_id("k", "a\x1fb")
    assert not ids.is_valid_id("a\x1fb")


def _directory(tenant_id: str = "t", member_id: str = "m1", **settings: object) -> str:
    return json.dumps(
        {
            "tenant": {"id": tenant_id, "name": "T", "settings": settings},
            "accounts": [],
            "users": [],
            "members": [{"id": member_id, "email": "ana@cs.example", "name": "Ana"}],
        }
    )


@pytest.mark.parametrize("bad", ["a/b", "__x__", "acme\x1fops", "x" * 129, ".."])
def test_import_names_the_row_of_a_bad_id(bad: str) -> None:
    problems = parse_directory(_directory(member_id=bad)).problems
    assert len(problems) == 1
    assert problems[0].startswith("members[0]")
    assert "not usable as a document id" in problems[0]


@pytest.mark.parametrize("days", [0, 3651, 1_000_000, -1])
def test_backfill_days_outside_1_to_3650_are_refused_at_import(days: int) -> None:
    problems = parse_directory(_directory(backfillDays=days)).problems
    assert problems == (
        f'tenant (id "t"): settings.backfillDays must be an integer from 1 to 3650, got {days}',
    )


def test_backfill_days_at_the_bounds_are_accepted_and_a_stored_out_of_range_value_is_ignored() -> None:
    assert parse_directory(_directory(backfillDays=1)).problems == ()
    assert parse_directory(_directory(backfillDays=3650)).problems == ()
    assert settings_from_document({"backfillDays": 1_000_000}) == TenantSettings()
    assert settings_from_document({"backfillDays": 3650}).backfill_days == 3650


def _job(**fields: object) -> bytes:
    return json.dumps({"v": 1, "tenantId": "acme", "memberId": "m-anna", **fields}).encode()


@pytest.mark.parametrize(
    "job",
    [
        _job(reason=["scheduled"]),
        _job(reason={"x": 1}),
        _job(reason=None),
        _job(tenantId="a/b"),
        _job(memberId="__x__"),
        _job(memberId=".."),
        _job(tenantId="acme\x1fops"),
    ],
)
def test_a_job_with_an_odd_reason_or_an_id_firestore_would_reject_is_invalid_input(job: bytes) -> None:
    with pytest.raises(InvalidInput):
        decode_job(job)


@pytest.mark.parametrize("envelope", [None, [], "text", 7, {"message": []}, {"message": "x"}])
def test_a_push_envelope_that_is_not_an_object_is_invalid_input(envelope: object) -> None:
    with pytest.raises(InvalidInput):
        job_from_push_message(push_message(envelope))


def test_a_well_formed_push_message_still_decodes() -> None:
    data = base64.b64encode(_job(reason="manual")).decode()
    job = job_from_push_message(push_message({"message": {"data": data}}))
    assert (job.tenant_id, job.member_id, job.reason) == ("acme", "m-anna", "manual")


@pytest.mark.parametrize(("field", "bad"), [("t", "a/b"), ("m", "__x__"), ("t", ".."), ("m", "a\x1fb")])
def test_a_signed_link_naming_a_bad_id_is_malformed(field: str, bad: str) -> None:
    params = links.sign_link(KEY, links.LinkPurpose.CONNECT, "acme", "m-anna", NOW + timedelta(minutes=5))
    params[field] = bad
    with pytest.raises(links.LinkError) as refused:
        links.verify_link(KEY, links.LinkPurpose.CONNECT, params, NOW)
    assert refused.value.kind == links.LinkErrorKind.MALFORMED


def test_no_link_can_be_signed_for_a_bad_id() -> None:
    with pytest.raises(ValueError, match="not usable as a document id"):
        links.sign_link(KEY, links.LinkPurpose.CONNECT, "acme", "a/b", NOW + timedelta(minutes=5))


WRITTEN = {"type": "google.cloud.firestore.document.v1.written"}


def test_a_json_format_event_that_is_not_a_document_event_is_invalid_input() -> None:
    with pytest.raises(InvalidInput, match="not a DocumentEventData"):
        directory_change_from_event(WRITTEN, {"value": {"fields": {"email": {"noSuchKind": 1}}}})
    with pytest.raises(InvalidInput, match="not a DocumentEventData"):
        directory_change_from_event(WRITTEN, {"value": 3})


@pytest.mark.parametrize(
    "document", ["tenants/a%b/users/u1", "tenants/acme/users/__x__", "tenants/../users/u"]
)
def test_an_event_on_a_document_with_a_bad_id_is_invalid_input(document: str) -> None:
    with pytest.raises(InvalidInput):
        directory_change_from_event({**WRITTEN, "document": document}, {"value": {"fields": {}}})


def test_an_event_on_a_user_document_is_decoded() -> None:
    change = directory_change_from_event(
        {**WRITTEN, "document": "tenants/acme/users/u1"},
        {"value": {"fields": {"email": {"stringValue": "bob@initech.com"}}}},
    )
    assert (change.tenant_id, change.collection, change.document_id) == ("acme", "users", "u1")
    assert change.old is None
    assert change.new == {"email": "bob@initech.com"}


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--tenant", "a/b"],
        ["connect-link", "--tenant", "acme", "--member", "__x__"],
        ["sync", "--tenant", "..", "--member", "m"],
        ["interactions", "--tenant", "acme", "--account", "a\x1fb"],
        ["rematch", "--tenant", "t/../x"],
    ],
)
def test_the_cli_refuses_a_bad_id_in_one_line_with_a_non_zero_exit(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    from shared.cli import main

    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith("calsync: error: ")
    assert "not usable as a document id" in err[0]
