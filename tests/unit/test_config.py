"""The configuration (README.md#configuration): one place reads the environment and reports every problem at
once."""

from __future__ import annotations

import pytest

from shared import config
from shared.errors import ConfigError


def test_defaults_apply_when_optional_variables_are_unset() -> None:
    cfg = config.load_config(environ={})
    assert cfg.oauth_token_uri == "https://oauth2.googleapis.com/token"
    assert cfg.calendar_endpoint == "https://www.googleapis.com/calendar/v3/"
    assert cfg.sync_topic == "calsync-sync-jobs"
    assert cfg.secret_manager_endpoint is None


def test_all_missing_and_malformed_values_are_reported_in_one_message() -> None:
    env = {"CALSYNC_OAUTH_REDIRECT_URI": "not a url", "PUBSUB_EMULATOR_HOST": "nohostport"}
    with pytest.raises(ConfigError) as caught:
        config.load_config(require=config.OAUTH, environ=env)
    message = str(caught.value)
    for expected in (
        "GOOGLE_CLOUD_PROJECT is required",
        "CALSYNC_OAUTH_CLIENT_ID is required",
        "CALSYNC_OAUTH_CLIENT_SECRET is required",
        "CALSYNC_LINK_SIGNING_KEY is required",
        "CALSYNC_OAUTH_REDIRECT_URI must be an http(s) URL",
        "PUBSUB_EMULATOR_HOST must be HOST:PORT",
    ):
        assert expected in message
    assert "\n" not in message


def test_a_short_signing_key_is_rejected() -> None:
    with pytest.raises(ConfigError, match="at least 16 bytes"):
        config.load_config(environ={"CALSYNC_LINK_SIGNING_KEY": "short"})


def test_repr_hides_secrets() -> None:
    cfg = config.load_config(
        environ={
            "CALSYNC_OAUTH_CLIENT_SECRET": "s3cr3t-value",
            "CALSYNC_LINK_SIGNING_KEY": "k" * 32,
        }
    )
    assert "s3cr3t-value" not in repr(cfg)
    assert "k" * 32 not in repr(cfg)


def test_required_accessor_names_the_variable() -> None:
    cfg = config.load_config(environ={})
    with pytest.raises(ConfigError, match="CALSYNC_OAUTH_CLIENT_ID"):
        cfg.required("oauth_client_id")
