"""Signed connect/disconnect links (shared.domain.links): pure, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest

from shared.domain import links
from shared.domain.links import LinkErrorKind, LinkPurpose

KEY = "k" * 32
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


CONNECTION = links.connection_marker(datetime(2026, 11, 1, 9, 30, 0, 123456, tzinfo=UTC))


def _signed(
    purpose: LinkPurpose = LinkPurpose.CONNECT, ttl: timedelta = links.CONNECT_LINK_TTL
) -> dict[str, str]:
    connection = CONNECTION if purpose is LinkPurpose.DISCONNECT else None
    return links.sign_link(KEY, purpose, "acme", "m-1", NOW + ttl, connection)


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
    params = links.sign_link(
        KEY, LinkPurpose.DISCONNECT, "Tenant-9.x_y", "__m..1", NOW + timedelta(hours=1), CONNECTION
    )
    url = links.link_url("https://cs.example.com/oauth_disconnect?lang=en", params)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert query["lang"] == "en"
    claims = links.verify_link(KEY, LinkPurpose.DISCONNECT, query, NOW)
    assert (claims.tenant_id, claims.member_id, claims.connection) == ("Tenant-9.x_y", "__m..1", CONNECTION)


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


# --- one key per purpose ------------------------------------------------------------------------


def _raw_signature(key: bytes, claims: list[object]) -> str:
    """A signature made directly with `key` (what links were signed with before per-purpose keys)."""
    import base64
    import hashlib
    import hmac
    import json

    message = json.dumps(claims, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def test_links_are_signed_with_a_key_derived_per_purpose_not_with_the_signing_key() -> None:
    from shared.domain.keys import KeyPurpose, derive_key

    params = _signed()
    claims: list[object] = ["calsync-link-v1", "connect", "acme", "m-1", int(params["exp"])]
    assert params["sig"] == _raw_signature(derive_key(KEY, KeyPurpose.CONNECT_LINK), claims)
    forged = {**params, "sig": _raw_signature(KEY.encode(), claims)}  # the signing key itself
    assert _kind(forged) is LinkErrorKind.BAD_SIGNATURE
    keys = {derive_key(KEY, purpose) for purpose in KeyPurpose}
    assert len(keys) == len(KeyPurpose)
    assert KEY.encode() not in keys
    assert derive_key(KEY, KeyPurpose.OAUTH_PKCE) != derive_key("other" * 8, KeyPurpose.OAUTH_PKCE)


def test_the_pkce_verifier_is_derived_with_its_own_key() -> None:
    import base64
    import hashlib
    import hmac

    from shared.domain.keys import KeyPurpose, derive_key
    from shared.services.connect import pkce_verifier

    message = b"calsync-pkce-v1\x1fsome-state"

    def encoded(key: bytes) -> str:
        return base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()

    assert pkce_verifier(KEY, "some-state") == encoded(derive_key(KEY, KeyPurpose.OAUTH_PKCE))
    assert pkce_verifier(KEY, "some-state") != encoded(KEY.encode())


# --- disconnect links: short-lived and bound to one connection ----------------------------------


def test_disconnect_links_last_one_hour_by_default() -> None:
    assert timedelta(hours=1) == links.DISCONNECT_LINK_TTL


def test_a_disconnect_link_carries_the_connection_it_ends_under_its_signature() -> None:
    params = _signed(LinkPurpose.DISCONNECT)
    assert params["c"] == CONNECTION
    claims = links.verify_link(KEY, LinkPurpose.DISCONNECT, params, NOW)
    assert claims.connection == CONNECTION
    other = links.connection_marker(datetime(2026, 11, 1, 9, 30, 0, 123457, tzinfo=UTC))
    assert _kind({**params, "c": other}, LinkPurpose.DISCONNECT) is LinkErrorKind.BAD_SIGNATURE
    without = {k: v for k, v in params.items() if k != "c"}
    assert _kind(without, LinkPurpose.DISCONNECT) is LinkErrorKind.BAD_SIGNATURE
    assert _kind({**params, "c": "x1"}, LinkPurpose.DISCONNECT) is LinkErrorKind.MALFORMED
    with pytest.raises(ValueError, match="connection"):
        links.sign_link(KEY, LinkPurpose.DISCONNECT, "acme", "m-1", NOW)
    with pytest.raises(ValueError, match="connection"):
        links.sign_link(KEY, LinkPurpose.CONNECT, "acme", "m-1", NOW, CONNECTION)


def test_the_connection_marker_is_exact_to_the_microsecond() -> None:
    moment = datetime(2026, 11, 1, 9, 30, 0, 999999, tzinfo=UTC)
    assert links.connection_marker(moment) == "1793525400999999"
    assert links.connection_marker(moment) != links.connection_marker(moment + timedelta(microseconds=1))
    assert links.connection_marker(None) == links.NO_CONNECTION
