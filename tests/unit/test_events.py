"""The event rules (README.md#how-meetings-are-matched-to-accounts) and meetingKey/timeZone
(docs/reference.md#the-interaction-document): one Google payload -> EventChange."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.domain.events import event_from_google
from shared.domain.models import (
    DropReason,
    EventChange,
    EventDropped,
    EventHeld,
    EventOutsideWindow,
    MemberCopy,
    TenantSettings,
)

WINDOW_START = datetime(2026, 1, 1, tzinfo=UTC)
MEMBER_EMAIL = "ana@cs.example"


def payload(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "kind": "calendar#event",
        "id": "evt1",
        "iCalUID": "evt1@google.com",
        "status": "confirmed",
        "updated": "2026-11-20T10:00:00.000Z",
        "summary": "Quarterly review",
        "start": {"dateTime": "2026-11-24T09:00:00-08:00", "timeZone": "America/Los_Angeles"},
        "end": {"dateTime": "2026-11-24T10:00:00-08:00", "timeZone": "America/Los_Angeles"},
        "organizer": {"email": "Ana@CS.example", "self": True},
        "attendees": [
            {"email": MEMBER_EMAIL, "self": True, "organizer": True, "responseStatus": "accepted"},
            {"email": "bob@logo.com", "displayName": "Bob", "responseStatus": "accepted"},
        ],
        "eventType": "default",
    }
    base.update(overrides)
    return base


def parse(
    data: Any, *, settings: TenantSettings | None = None, calendar_tz: str | None = "Europe/Paris"
) -> EventChange:
    return event_from_google(
        data,
        member_id="m1",
        member_email=MEMBER_EMAIL,
        calendar_time_zone=calendar_tz,
        settings=settings or TenantSettings(),
        window_start=WINDOW_START,
        generation=3,
    )


def held(data: Any, **kwargs: Any) -> MemberCopy:
    change = parse(data, **kwargs)
    assert isinstance(change, EventHeld), change
    return change.copy


def dropped(data: Any, **kwargs: Any) -> EventDropped:
    change = parse(data, **kwargs)
    assert isinstance(change, EventDropped), change
    return change


# --- held events ------------------------------------------------------------------------------


def test_timed_event_is_held_with_utc_times_and_normalised_emails() -> None:
    copy = held(payload())
    assert copy.member_id == "m1"
    assert copy.event_id == "evt1"
    assert copy.meeting_key == "evt1@google.com"
    assert copy.start == datetime(2026, 11, 24, 17, 0, tzinfo=UTC)
    assert copy.end == datetime(2026, 11, 24, 18, 0, tzinfo=UTC)
    assert copy.updated == datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
    assert copy.title == "Quarterly review"
    assert copy.organizer_email == "ana@cs.example"
    assert copy.generation == 3
    assert [a.email for a in copy.attendees] == ["ana@cs.example", "bob@logo.com"]


def test_meeting_key_is_ical_uid() -> None:
    assert held(payload()).meeting_key == "evt1@google.com"


def test_meeting_key_is_event_id_when_there_is_no_ical_uid() -> None:
    data = payload()
    del data["iCalUID"]
    assert held(data).meeting_key == "evt1"


def test_meeting_key_of_recurring_instance_is_uid_at_original_start_in_utc() -> None:
    data = payload(
        id="rec1_20261124T170000Z",
        iCalUID="rec1@google.com",
        recurringEventId="rec1",
        originalStartTime={"dateTime": "2026-11-24T09:00:00-08:00", "timeZone": "America/Los_Angeles"},
        # the instance was moved: the key still follows the original start
        start={"dateTime": "2026-11-25T11:00:00-08:00"},
        end={"dateTime": "2026-11-25T11:30:00-08:00"},
    )
    assert held(data).meeting_key == "rec1@google.com@20261124T170000Z"


def test_recurring_instance_without_original_start_is_malformed() -> None:
    assert dropped(payload(recurringEventId="rec1")).reason is DropReason.MALFORMED


def test_time_zone_is_start_time_zone() -> None:
    assert held(payload()).time_zone == "America/Los_Angeles"


def test_time_zone_falls_back_to_calendar_time_zone() -> None:
    data = payload(
        start={"dateTime": "2026-11-24T09:00:00+01:00"}, end={"dateTime": "2026-11-24T10:00:00+01:00"}
    )
    assert held(data, calendar_tz="Europe/Paris").time_zone == "Europe/Paris"


def test_time_zone_falls_back_to_tenant_default_time_zone() -> None:
    data = payload(
        start={"dateTime": "2026-11-24T09:00:00+09:00"}, end={"dateTime": "2026-11-24T10:00:00+09:00"}
    )
    settings = TenantSettings(default_time_zone="Asia/Tokyo")
    assert held(data, calendar_tz=None, settings=settings).time_zone == "Asia/Tokyo"


def test_date_time_without_offset_is_read_in_the_event_time_zone() -> None:
    data = payload(
        start={"dateTime": "2026-11-24T09:00:00", "timeZone": "Asia/Kolkata"},
        end={"dateTime": "2026-11-24T09:45:00", "timeZone": "Asia/Kolkata"},
    )
    assert held(data).start == datetime(2026, 11, 24, 3, 30, tzinfo=UTC)


def test_tentative_event_counts_like_confirmed() -> None:
    assert isinstance(parse(payload(status="tentative")), EventHeld)


def test_from_gmail_event_type_counts() -> None:
    assert isinstance(parse(payload(eventType="fromGmail")), EventHeld)


def test_missing_event_type_counts_as_default() -> None:
    data = payload()
    del data["eventType"]
    assert isinstance(parse(data), EventHeld)


def test_member_organising_holds_the_event_even_when_not_in_attendees() -> None:
    data = payload(attendees=[{"email": "bob@logo.com"}])
    copy = held(data)
    assert [a.email for a in copy.attendees] == ["bob@logo.com"]
    assert copy.organizer_email == "ana@cs.example"


def test_private_event_is_held_when_tenant_includes_private_events() -> None:
    settings = TenantSettings(include_private_events=True)
    assert isinstance(parse(payload(visibility="private"), settings=settings), EventHeld)


def test_public_visibility_is_held() -> None:
    assert isinstance(parse(payload(visibility="public")), EventHeld)


def test_resource_attendees_are_dropped() -> None:
    attendees = [
        {"email": "bob@logo.com"},
        {"email": "c_1889@resource.calendar.google.com", "resource": True, "displayName": "Room 4"},
    ]
    assert [a.email for a in held(payload(attendees=attendees)).attendees] == ["bob@logo.com"]


def test_attendees_without_email_are_dropped() -> None:
    attendees = [{"displayName": "Phone guest"}, {"email": "bob@logo.com"}, {"email": None}]
    assert [a.email for a in held(payload(attendees=attendees)).attendees] == ["bob@logo.com"]


def test_attendee_emails_without_at_sign_are_dropped() -> None:
    attendees = [{"email": "not-an-email"}, {"email": "bob@logo.com"}]
    assert [a.email for a in held(payload(attendees=attendees)).attendees] == ["bob@logo.com"]


def test_attendee_emails_are_trimmed_and_lower_cased_only() -> None:
    attendees = [{"email": "  Bob.Smith+QBR@Logo.COM "}]
    assert [a.email for a in held(payload(attendees=attendees)).attendees] == ["bob.smith+qbr@logo.com"]


def test_attendee_response_status_defaults_to_needs_action() -> None:
    copy = held(payload(attendees=[{"email": "bob@logo.com"}]))
    assert copy.attendees[0].response_status == "needsAction"


def test_duplicate_attendee_emails_keep_the_first_entry() -> None:
    attendees = [
        {"email": "bob@logo.com", "displayName": "Bob"},
        {"email": "BOB@logo.com", "displayName": "B2"},
    ]
    copy = held(payload(attendees=attendees))
    assert [(a.email, a.display_name) for a in copy.attendees] == [("bob@logo.com", "Bob")]


def test_attendee_flags_are_kept() -> None:
    copy = held(payload())
    me, bob = copy.attendees
    assert (me.is_self, me.is_organizer, me.response_status) == (True, True, "accepted")
    assert (bob.is_self, bob.is_organizer, bob.display_name) == (False, False, "Bob")


def test_organizer_email_falls_back_to_organizer_attendee() -> None:
    data = payload(organizer={}, attendees=[{"email": "Carol@Logo.com", "organizer": True}])
    assert held(data).organizer_email == "carol@logo.com"


def test_attendees_omitted_keeps_what_is_listed() -> None:
    data = payload(attendeesOmitted=True, attendees=[{"email": MEMBER_EMAIL, "self": True}])
    assert [a.email for a in held(data).attendees] == [MEMBER_EMAIL]


def test_missing_summary_gives_empty_title() -> None:
    data = payload()
    del data["summary"]
    assert held(data).title == ""


def test_missing_updated_loses_every_tie() -> None:
    data = payload()
    del data["updated"]
    assert held(data).updated == datetime(1970, 1, 1, tzinfo=UTC)


# --- events that produce nothing ----------------------------------------------------------------


def test_cancelled_event_produces_nothing() -> None:
    change = dropped(payload(status="cancelled"))
    assert change.reason is DropReason.CANCELLED
    assert change.meeting_key == "evt1@google.com"


def test_cancelled_bare_stub_has_no_meeting_key() -> None:
    change = dropped({"id": "evt1", "status": "cancelled"})
    assert change == EventDropped(event_id="evt1", meeting_key=None, reason=DropReason.CANCELLED)


def test_cancelled_recurring_instance_keeps_its_instance_key() -> None:
    data = {
        "id": "rec1_20261124T170000Z",
        "iCalUID": "rec1@google.com",
        "status": "cancelled",
        "recurringEventId": "rec1",
        "originalStartTime": {"dateTime": "2026-11-24T17:00:00Z"},
    }
    assert dropped(data).meeting_key == "rec1@google.com@20261124T170000Z"


def test_all_day_event_produces_nothing() -> None:
    data = payload(start={"date": "2026-11-24"}, end={"date": "2026-11-25"})
    assert dropped(data).reason is DropReason.ALL_DAY


def test_event_whose_end_equals_start_produces_nothing() -> None:
    data = payload(end={"dateTime": "2026-11-24T09:00:00-08:00"})
    assert dropped(data).reason is DropReason.NOT_AFTER_START


def test_event_whose_end_is_before_start_produces_nothing() -> None:
    data = payload(end={"dateTime": "2026-11-24T08:00:00-08:00"})
    assert dropped(data).reason is DropReason.NOT_AFTER_START


@pytest.mark.parametrize("event_type", ["focusTime", "outOfOffice", "workingLocation", "birthday"])
def test_event_type_other_than_default_or_from_gmail_produces_nothing(event_type: str) -> None:
    assert dropped(payload(eventType=event_type)).reason is DropReason.EVENT_TYPE


@pytest.mark.parametrize("visibility", ["private", "confidential"])
def test_private_or_confidential_event_produces_nothing_by_default(visibility: str) -> None:
    assert dropped(payload(visibility=visibility)).reason is DropReason.PRIVATE


def test_event_declined_by_the_member_produces_nothing() -> None:
    attendees = [
        {"email": MEMBER_EMAIL, "self": True, "responseStatus": "declined"},
        {"email": "bob@logo.com"},
    ]
    assert dropped(payload(attendees=attendees)).reason is DropReason.DECLINED


def test_event_declined_by_the_member_under_another_address_uses_self_flag() -> None:
    attendees = [
        {"email": "ana.alias@cs.example", "self": True, "responseStatus": "declined"},
        {"email": "b@x.com"},
    ]
    assert dropped(payload(attendees=attendees)).reason is DropReason.DECLINED


def test_event_declined_by_another_attendee_is_still_held() -> None:
    attendees = [
        {"email": MEMBER_EMAIL, "self": True},
        {"email": "bob@logo.com", "responseStatus": "declined"},
    ]
    assert isinstance(parse(payload(attendees=attendees)), EventHeld)


def test_event_with_no_attendees_produces_nothing() -> None:
    data = payload()
    del data["attendees"]
    assert dropped(data).reason is DropReason.NO_ATTENDEES


def test_event_with_only_resources_and_emailless_attendees_produces_nothing() -> None:
    attendees = [{"email": "room@resource.calendar.google.com", "resource": True}, {"displayName": "x"}]
    assert dropped(payload(attendees=attendees)).reason is DropReason.NO_ATTENDEES


def test_event_starting_before_window_is_outside_window() -> None:
    data = payload(start={"dateTime": "2025-12-31T23:00:00Z"}, end={"dateTime": "2026-01-01T01:00:00Z"})
    assert parse(data) == EventOutsideWindow(event_id="evt1")


def test_cancelled_event_starting_before_window_is_outside_window() -> None:
    data = payload(
        status="cancelled",
        start={"dateTime": "2025-06-01T10:00:00Z"},
        end={"dateTime": "2025-06-01T11:00:00Z"},
    )
    assert parse(data) == EventOutsideWindow(event_id="evt1")


def test_event_starting_exactly_at_window_start_is_inside() -> None:
    data = payload(start={"dateTime": "2026-01-01T00:00:00Z"}, end={"dateTime": "2026-01-01T01:00:00Z"})
    assert isinstance(parse(data), EventHeld)


def test_window_is_decided_before_other_rules() -> None:
    data = payload(
        visibility="private",
        start={"dateTime": "2025-06-01T10:00:00Z"},
        end={"dateTime": "2025-06-01T11:00:00Z"},
    )
    assert isinstance(parse(data), EventOutsideWindow)


# --- malformed events: dropped, counted, never raise ---------------------------------------------


@pytest.mark.parametrize(
    ("data", "detail"),
    [
        (payload(start=None), "missing start"),
        (payload(start={}), "missing start.dateTime"),
        (payload(end=None), "missing end"),
        (payload(end={"timeZone": "UTC"}), "missing end.dateTime"),
        (payload(end={"date": "2026-11-25"}), "missing end.dateTime"),
        (payload(start={"dateTime": "tomorrow at nine"}), "unparseable start.dateTime"),
        (payload(end={"dateTime": "2026-13-45T99:00:00Z"}), "unparseable end.dateTime"),
        (payload(start={"dateTime": 1732467600}), "missing start.dateTime"),
        (payload(start={"date": "someday"}, end={"date": "2026-11-25"}), "unparseable start.date"),
        (
            payload(start={"dateTime": "2026-11-24T09:00:00", "timeZone": "Mars/Olympus_Mons"}),
            "unknown time zone",
        ),
        (payload(attendees="bob@logo.com"), "attendees is not a list"),
        (payload(attendees={"email": "bob@logo.com"}), "attendees is not a list"),
        (payload(start="2026-11-24T09:00:00Z"), "missing start"),
        (payload(id=None), "missing id"),
        (payload(id=42), "missing id"),
    ],
)
def test_malformed_event_is_dropped_with_a_detail(data: Any, detail: str) -> None:
    change = dropped(data)
    assert change.reason is DropReason.MALFORMED
    assert change.detail == detail
    assert "@logo" not in change.detail


def test_unknown_calendar_time_zone_is_malformed() -> None:
    data = payload(start={"dateTime": "2026-11-24T09:00:00Z"}, end={"dateTime": "2026-11-24T10:00:00Z"})
    assert dropped(data, calendar_tz="Not/AZone").reason is DropReason.MALFORMED


def test_malformed_event_keeps_its_meeting_key_so_the_copy_is_removed() -> None:
    assert dropped(payload(start={"dateTime": "garbage"})).meeting_key == "evt1@google.com"


@pytest.mark.parametrize(
    "data",
    [
        None,
        "event",
        42,
        [],
        {},
        {"id": "x"},
        {"id": "x", "status": "confirmed", "start": [], "end": []},
        {"id": "x", "iCalUID": 7, "start": {"dateTime": "2026-11-24T09:00:00Z"}, "end": {"dateTime": None}},
        payload(attendees=[None, 3, "x", {"email": 5}, {"email": "bob@logo.com", "responseStatus": 1}]),
        payload(organizer="ana"),
        payload(summary=12, eventType=None, visibility=["x"]),
        payload(recurringEventId="r", originalStartTime="2026"),
        payload(recurringEventId="r", originalStartTime={"dateTime": "bad"}),
        payload(
            start={"dateTime": "9999-12-31T23:59:59-14:00"}, end={"dateTime": "9999-12-31T23:59:59-14:00"}
        ),
    ],
)
def test_odd_payloads_never_raise(data: Any) -> None:
    change = parse(data)
    assert isinstance(change, EventHeld | EventDropped | EventOutsideWindow)


def test_non_mapping_payload_is_malformed() -> None:
    assert parse(["not", "an", "event"]) == EventDropped(
        event_id="", meeting_key=None, reason=DropReason.MALFORMED, detail="not an object"
    )


def test_wrongly_typed_attendee_entries_are_skipped() -> None:
    copy = held(
        payload(attendees=[None, 3, "x", {"email": 5}, {"email": "bob@logo.com", "responseStatus": 1}])
    )
    assert [(a.email, a.response_status) for a in copy.attendees] == [("bob@logo.com", "needsAction")]
