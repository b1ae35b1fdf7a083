"""Production Google clients pointed at the stand-in, for tests that drive it directly."""

from __future__ import annotations

from typing import Any

from google.oauth2.credentials import Credentials
from googleapiclient.discovery import build

from shared.sandbox.google_standin import GoogleStandIn


def calendar_service(standin: GoogleStandIn, refresh_token: str) -> Any:
    """googleapiclient's Calendar v3 (offline discovery), authorised by `refresh_token`."""
    credentials = Credentials(
        token=None,
        refresh_token=refresh_token,
        token_uri=standin.token_uri,
        client_id=standin.client_id,
        client_secret=standin.client_secret,
    )
    return build(
        "calendar",
        "v3",
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": standin.calendar_endpoint},
        credentials=credentials,
    )
