"""Validation of the `calsync import` directory file (pure)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from shared.domain.directory_file import AccountRow, MemberRow, parse_directory
from shared.domain.models import TenantSettings, User
from shared.domain.settings import is_time_zone, settings_from_document, settings_problems


def _good() -> dict[str, Any]:
    return {
        "tenant": {
            "id": "acme",
            "name": "Acme CS",
            "internalDomains": ["Acme-CS.example"],
            "settings": {
                "backfillDays": 90,
                "excludeDeclined": False,
                "defaultTimeZone": "Europe/Paris",
                "freeMailDomainsAllowed": ["GMAIL.com"],
                "includePrivateEvents": True,
            },
        },
        "accounts": [
            {
                "id": "logo",
                "name": "Logo Ltd",
                "domains": ["https://www.Logo.co.uk/", "logo.co.uk", "logo.example"],
            },
            {"id": "globex", "name": "Globex", "domains": []},
        ],
        "users": [{"id": "u1", "email": " Ann@Logo.co.uk ", "name": "Ann", "accountId": "logo"}],
        "members": [{"id": "m1", "email": "Me@Acme-CS.example", "name": "Me"}],
    }


def _problems(data: Any, existing: frozenset[str] = frozenset()) -> list[str]:
    text = data if isinstance(data, str) else json.dumps(data)
    return list(parse_directory(text).with_account_references(existing).problems)


def test_a_good_file_parses_normalised() -> None:
    directory = parse_directory(json.dumps(_good()))
    assert directory.problems == ()
    assert directory.tenant.id == "acme"
    assert directory.tenant.internal_domains == ("acme-cs.example",)
    assert directory.tenant.settings == TenantSettings(
        backfill_days=90,
        include_private_events=True,
        exclude_declined=False,
        free_mail_domains_allowed=frozenset({"gmail.com"}),
        default_time_zone="Europe/Paris",
    )
    assert directory.settings_document["freeMailDomainsAllowed"] == ["gmail.com"]
    assert directory.accounts[0] == AccountRow(
        "logo",
        "Logo Ltd",
        ("logo.co.uk", "logo.example"),
        ("https://www.Logo.co.uk/", "logo.co.uk", "logo.example"),
    )
    assert directory.users == (User("u1", "ann@logo.co.uk", "Ann", "logo"),)
    assert directory.members == (MemberRow("m1", "me@acme-cs.example", "Me"),)
    assert directory.outside_account_ids == frozenset()


def test_sections_and_settings_are_optional() -> None:
    directory = parse_directory('{"tenant": {"id": "t", "name": "T"}}')
    assert directory.problems == ()
    assert directory.tenant.settings == TenantSettings()
    assert directory.settings_document == {}


def test_every_bad_row_is_named_once() -> None:
    data = _good()
    data["tenant"]["settings"] = {
        "backfillDays": -1,
        "excludeDeclined": "no",
        "defaultTimeZone": "Mars/Olympus",
        "typo": 1,
    }
    data["accounts"] += [
        {"id": "logo", "name": "Dup", "domains": ["dup.example"]},
        {"id": "bad", "name": "Bad", "domains": ["not a domain", 7]},
        {"id": "a/b", "name": 3},
    ]
    data["users"] += [
        {"id": "u-9", "email": "bob@acme.example", "name": "Bob", "accountId": "acme"},
        {"id": "u1", "email": "x@logo.co.uk", "name": "Dup", "accountId": "logo"},
        {"id": "u3", "email": "no-at-sign", "name": "C", "accountId": "logo", "phone": "1"},
        "not an object",
    ]
    data["members"] += [
        {"id": "m2", "email": "ME@acme-cs.example", "name": "Twin"},
        {"id": "m1", "email": "other@acme-cs.example", "name": "Dup id"},
        {"email": "x@acme-cs.example", "name": "No id"},
    ]
    assert _problems(data) == [
        'tenant (id "acme"): unknown setting "typo"; '
        "settings.backfillDays must be an integer from 1 to 3650, got -1; "
        'settings.excludeDeclined must be true or false, got "no"; '
        'settings.defaultTimeZone must be an IANA time zone name, got "Mars/Olympus"',
        'accounts[2] (id "logo"): duplicate id (also accounts[0])',
        'accounts[3] (id "bad"): domains has malformed domains "not a domain", 7',
        'accounts[4] (id "a/b"): missing field "domains"; id "a/b" is not usable as a document id '
        "(1-128 characters of A-Z a-z 0-9 . _ -); name must be a string, got 3",
        'users[1] (id "u-9"): accountId "acme" is not an account in this file or the tenant',
        'users[2] (id "u1"): duplicate id (also users[0])',
        'users[3] (id "u3"): unknown field "phone"; malformed email "no-at-sign"',
        "users[4]: must be an object",
        'members[1] (id "m2"): duplicate member email "me@acme-cs.example" (also members[0])',
        'members[2] (id "m1"): duplicate id (also members[0])',
        'members[3]: missing field "id"',
    ]


def test_users_may_point_at_accounts_already_in_the_tenant() -> None:
    data = _good()
    data["users"].append({"id": "u2", "email": "c@initech.example", "name": "C", "accountId": "initech"})
    directory = parse_directory(json.dumps(data))
    assert directory.outside_account_ids == frozenset({"initech"})
    assert directory.with_account_references({"initech"}).problems == ()
    assert _problems(data) == [
        'users[1] (id "u2"): accountId "initech" is not an account in this file or the tenant'
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{", "file: not valid JSON"),
        ("[]", "file: the file must hold a JSON object"),
        ('{"accounts": []}', "tenant: missing"),
        ('{"tenant": {"id": "t", "name": "T"}, "users": {}}', "file: users must be a list"),
        ('{"tenant": {"id": "t", "name": "T"}, "extra": 1}', 'file: unknown field "extra"'),
        ('{"tenant": {"id": "", "name": "T"}}', 'tenant (id ""): id must be a non-empty string'),
        (
            '{"tenant": {"id": "t", "name": "T", "internalDomains": "x.example"}}',
            "internalDomains must be a list",
        ),
        ('{"tenant": {"id": "t", "name": "T", "settings": {"backfillDays": true}}}', "backfillDays must be"),
        ('{"tenant": {"id": "t", "name": "T", "settings": {"backfillDays": 1.5}}}', "backfillDays must be"),
        ('{"tenant": {"id": "t", "name": "T", "settings": []}}', "settings must be an object"),
    ],
)
def test_file_level_problems(text: str, expected: str) -> None:
    problems = _problems(text)
    assert len(problems) == 1
    assert expected in problems[0]


def test_settings_from_a_stored_document_fall_back_to_defaults() -> None:
    assert settings_from_document(None) == TenantSettings()
    assert settings_from_document({"backfillDays": "30", "excludeDeclined": 0, "defaultTimeZone": "x"}) == (
        TenantSettings()
    )
    assert settings_from_document(
        {"backfillDays": 7, "defaultTimeZone": "America/New_York"}
    ) == TenantSettings(backfill_days=7, default_time_zone="America/New_York")


def test_time_zone_names() -> None:
    assert is_time_zone("UTC")
    assert is_time_zone("Asia/Kolkata")
    assert not is_time_zone("../etc/passwd")
    assert not is_time_zone(" UTC")
    assert not is_time_zone("")
    assert not is_time_zone(5)


def test_allow_any_google_account_is_a_boolean_setting_off_by_default() -> None:
    assert TenantSettings().allow_any_google_account is False
    problems, document = settings_problems({"allowAnyGoogleAccount": True})
    assert (problems, document) == ([], {"allowAnyGoogleAccount": True})
    for bad in ("yes", 1, None, [True]):
        problems, document = settings_problems({"allowAnyGoogleAccount": bad})
        assert len(problems) == 1
        assert "settings.allowAnyGoogleAccount must be true or false" in problems[0]
        assert document == {}
    # Read tolerantly: a malformed stored value counts as absent (false).
    assert settings_from_document({"allowAnyGoogleAccount": True}).allow_any_google_account is True
    assert settings_from_document({"allowAnyGoogleAccount": "true"}).allow_any_google_account is False
    assert settings_from_document({}).allow_any_google_account is False
