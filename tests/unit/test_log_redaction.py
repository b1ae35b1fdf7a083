"""Log redaction (shared.logs) with every secret-bearing value the code handles: refresh and
access tokens, authorization codes, OAuth state, the PKCE verifier, link signatures, id tokens,
the client secret and the link signing key — by field name, nested, inside error strings,
tracebacks and reprs, and inside URLs."""

from __future__ import annotations

import json

import pytest

from shared import logs

REFRESH = "1//0gLd8AbCdEfGhIjKlMnOpQrStUvWxYz-0123456789_abcdefghij"
ACCESS = "ya29.a0AfB_byDEFghijklMNOPqrstuvWXyz0123456789-_"
CODE = "4/0AfJohXmZyXwVuTsRqPoNmLkJiHgFeDcBa"
ID_TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJlbWFpbCI6ImFAYi5jIn0.c2lnbmF0dXJlLXNpZ25hdHVyZQ"
STATE = "st8Kq2VwXy9ZaBcDeFgHiJkLmNoPqRsTuVwXyZ01"
VERIFIER = "vErIfIeR-0123456789abcdefghijklmnopqrstuvwxyzABCDEFG"
SIG = "c2lnLXNpZy1zaWctc2lnLXNpZy1zaWctc2ln"
CLIENT_SECRET = "GOCSPX-client-secret-value-0123"
LINK_KEY = "link-signing-key-0123456789abcdef"
SECRETS = [REFRESH, ACCESS, CODE, ID_TOKEN, STATE, VERIFIER, SIG, CLIENT_SECRET, LINK_KEY]


@pytest.fixture(autouse=True)
def _debug_logs_with_the_configured_secrets() -> None:
    logs.configure(level="DEBUG", stream="stdout")
    logs.register_secret(CLIENT_SECRET)
    logs.register_secret(LINK_KEY)


def _logged(capsys: pytest.CaptureFixture[str], **fields: object) -> str:
    logs.get_logger().info("something happened", **fields)
    out = capsys.readouterr().out
    assert out.strip(), "nothing was logged"
    json.loads(out.strip().splitlines()[-1])  # still one JSON line
    return out


@pytest.mark.parametrize(
    "fields",
    [
        {"refresh_token": REFRESH},
        {"state": STATE, "code": CODE, "sig": SIG, "jwt": ID_TOKEN},
        {"code_verifier": VERIFIER, "signing_key": LINK_KEY, "client_secret": CLIENT_SECRET},
        {"grant": {"tokens": {"refresh": REFRESH}, "params": {"state": STATE}}},
        {"calls": [{"code": CODE}, {"sig": SIG}]},
    ],
    ids=["top-level", "short-names", "keys", "nested", "in-lists"],
)
def test_secrets_are_redacted_by_field_name_at_any_depth(
    capsys: pytest.CaptureFixture[str], fields: dict[str, object]
) -> None:
    out = _logged(capsys, **fields)
    assert not [s for s in SECRETS if s in out]
    assert "[redacted]" in out


@pytest.mark.parametrize("secret", [REFRESH, ACCESS, CODE, ID_TOKEN, CLIENT_SECRET, LINK_KEY])
def test_secrets_are_redacted_by_shape_or_value_inside_free_text(
    capsys: pytest.CaptureFixture[str], secret: str
) -> None:
    out = _logged(capsys, error=f"token endpoint said: invalid request for {secret} (HTTP 400)")
    assert secret not in out
    assert "token endpoint said: invalid request for [redacted]" in out


def test_url_parameters_carrying_secrets_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"https://x.example/callback?state={STATE}&code={CODE}&scope=email"
    link = f"https://x.example/connect?t=acme&m=m-anna&exp=1790000000&sig={SIG}"
    out = _logged(capsys, url=url, link=link)
    assert not [s for s in (STATE, CODE, SIG) if s in out]
    assert "scope=email" in out  # what is not secret stays readable
    assert "t=acme&m=m-anna" in out


def test_tracebacks_and_reprs_are_redacted(capsys: pytest.CaptureFixture[str]) -> None:
    class Credentials:
        def __repr__(self) -> str:
            return f"Credentials(token={ACCESS!r}, refresh_token={REFRESH!r})"

    try:
        raise RuntimeError(f"refresh failed for {REFRESH} with Authorization: Bearer {ACCESS}")
    except RuntimeError:
        logs.get_logger().exception("unexpected error", credentials=Credentials())
    out = capsys.readouterr().out
    assert "RuntimeError" in out  # the traceback is still there
    assert REFRESH not in out
    assert ACCESS not in out


def test_ordinary_fields_are_left_alone(capsys: pytest.CaptureFixture[str]) -> None:
    out = _logged(
        capsys, tenant_id="acme", member_id="m-anna", status_code=503, meeting_key="abc@google.com", events=12
    )
    record = json.loads(out.strip().splitlines()[-1])
    kept = {k: record[k] for k in ("tenant_id", "member_id", "status_code", "meeting_key", "events")}
    assert kept == {
        "tenant_id": "acme",
        "member_id": "m-anna",
        "status_code": 503,
        "meeting_key": "abc@google.com",
        "events": 12,
    }
    assert "[redacted]" not in out
