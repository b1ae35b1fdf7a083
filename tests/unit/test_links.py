"""Signed connect/disconnect links (shared.domain.links): pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.domain import links
from shared.domain.links import LinkErrorKind, LinkPurpose

KEY = "k" * 32
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


def _signed(
    purpose: LinkPurpose = LinkPurpose.CONNECT, ttl: timedelta = links.CONNECT_LINK_TTL
) -> dict[str, str]:
    return links.sign_link(KEY, purpose, "acme", "m-1", NOW + ttl)


def _kind(
    params: dict[str, str], purpose: LinkPurpose = LinkPurpose.CONNECT, at: datetime = NOW
) -> LinkErrorKind:
    with pytest.raises(links.LinkError) as caught:
        links.verify_link(KEY, purpose, params, at)
    return caught.value.kind


def test_a_fresh_link_verifies_and_carries_its_claims() -> None:
    claims = links.verify_link(KEY, LinkPurpose.CONNECT, _signed(), NOW)
    assert (claims.tenant_id, claims.member_id, claims.purpose) == ("acme", "m-1", LinkPurpose.CONNECT)
    assert claims.expires_at == NOW + timedelta(minutes=15)


def test_a_link_is_usable_many_times_until_it_expires() -> None:
    params = _signed()
    for minutes in (0, 5, 14):
        links.verify_link(KEY, LinkPurpose.CONNECT, params, NOW + timedelta(minutes=minutes, seconds=59))
    assert _kind(params, at=NOW + timedelta(minutes=15)) is LinkErrorKind.EXPIRED


def test_connect_links_last_15_minutes_by_default() -> None:
    assert timedelta(minutes=15) == links.CONNECT_LINK_TTL


@pytest.mark.parametrize("field", ["t", "m", "exp"])
def test_changing_any_claim_breaks_the_signature(field: str) -> None:
    params = _signed()
    params[field] = params[field] + "1" if field == "exp" else "other"
    assert _kind(params) is LinkErrorKind.BAD_SIGNATURE


def test_extending_the_expiry_is_a_bad_signature_not_a_valid_link() -> None:
    params = _signed()
    params["exp"] = str(int(params["exp"]) + 3600)
    assert _kind(params, at=NOW + timedelta(minutes=30)) is LinkErrorKind.BAD_SIGNATURE


def test_a_tampered_signature_is_rejected() -> None:
    params = _signed()
    sig = params["sig"]
    params["sig"] = ("A" if sig[0] != "A" else "B") + sig[1:]
    assert _kind(params) is LinkErrorKind.BAD_SIGNATURE


def test_an_expired_link_with_a_bad_signature_reports_the_signature() -> None:
    params = _signed()
    params["sig"] = links.sign_link("x" * 32, LinkPurpose.CONNECT, "acme", "m-1", NOW + timedelta(minutes=1))[
        "sig"
    ]
    assert _kind(params, at=NOW + timedelta(days=1)) is LinkErrorKind.BAD_SIGNATURE


def test_another_key_does_not_verify() -> None:
    with pytest.raises(links.LinkError) as caught:
        links.verify_link("z" * 32, LinkPurpose.CONNECT, _signed(), NOW)
    assert caught.value.kind is LinkErrorKind.BAD_SIGNATURE


def test_a_connect_link_is_not_a_disconnect_link_and_vice_versa() -> None:
    assert _kind(_signed(LinkPurpose.CONNECT), LinkPurpose.DISCONNECT) is LinkErrorKind.BAD_SIGNATURE
    assert _kind(_signed(LinkPurpose.DISCONNECT), LinkPurpose.CONNECT) is LinkErrorKind.BAD_SIGNATURE


def test_ids_cannot_be_shifted_between_tenant_and_member() -> None:
    one = links.sign_link(KEY, LinkPurpose.CONNECT, "ab", "c", NOW + timedelta(minutes=1))
    shifted = {**one, "t": "a", "m": "bc"}
    assert _kind(shifted) is LinkErrorKind.BAD_SIGNATURE


@pytest.mark.parametrize(
    "mutation",
    [
        {"t": ""},
        {"m": ""},
        {"exp": ""},
        {"sig": ""},
        {"exp": "-5"},
        {"exp": "12e3"},
        {"exp": "١٢٣"},  # non-ASCII digits
        {"exp": "9" * 20},
        {"sig": "not base64!"},
        {"sig": "abc"},
        {"sig": "é" * 43},
        {"t": "x" * 300},
    ],
)
def test_malformed_links_say_so(mutation: dict[str, str]) -> None:
    assert _kind({**_signed(), **mutation}) is LinkErrorKind.MALFORMED


def test_missing_parameters_are_malformed() -> None:
    assert _kind({}) is LinkErrorKind.MALFORMED


def test_link_errors_are_invalid_input_with_a_showable_message() -> None:
    from shared.errors import InvalidInput

    with pytest.raises(InvalidInput, match="expired"):
        links.verify_link(
            KEY, LinkPurpose.CONNECT, _signed(ttl=timedelta(seconds=1)), NOW + timedelta(seconds=2)
        )


def test_ids_with_every_allowed_character_round_trip_through_a_url() -> None:
    params = links.sign_link(KEY, LinkPurpose.DISCONNECT, "Tenant-9.x_y", "__m..1", NOW + timedelta(hours=1))
    url = links.link_url("https://cs.example.com/oauth_disconnect?lang=en", params)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["lang"] == "en"
    claims = links.verify_link(KEY, LinkPurpose.DISCONNECT, query, NOW)
    assert (claims.tenant_id, claims.member_id) == ("Tenant-9.x_y", "__m..1")


def test_signing_refuses_bad_inputs() -> None:
    with pytest.raises(ValueError, match="tenant"):
        links.sign_link(KEY, LinkPurpose.CONNECT, "", "m", NOW)
    with pytest.raises(ValueError, match="timezone"):
        links.sign_link(KEY, LinkPurpose.CONNECT, "t", "m", datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="empty"):
        links.sign_link(b"", LinkPurpose.CONNECT, "t", "m", NOW)


def test_signature_is_deterministic_and_url_safe() -> None:
    a, b = _signed(), _signed()
    assert a == b
    assert len(a["sig"]) == 43
    assert set(a["sig"]) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
