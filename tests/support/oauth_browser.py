"""The browser's side of the OAuth tests (tests/integration/test_oauth_*.py): the three OAuth
functions served in-process through functions-framework, against the Firestore and Pub/Sub
emulators and the Google stand-in, with the production adapters."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import functions_framework
import pytest
import requests
from google.cloud import firestore, pubsub_v1

from shared import bootstrap
from shared.adapters.secrets import secret_id
from shared.domain import links
from shared.domain.links import LinkPurpose
from shared.sandbox.google_standin import GoogleStandIn
from shared.services.jobs import decode_job
from shared.services.ports import SyncJob

MAIN = str(Path(__file__).resolve().parents[2] / "functions" / "main.py")
BASE = "http://127.0.0.1:8080"  # where the browser thinks the functions are (test clients serve them)
CONNECT_URL = f"{BASE}/oauth_connect"
CALLBACK_URL = f"{BASE}/oauth_callback"
DISCONNECT_URL = f"{BASE}/oauth_disconnect"
LINK_KEY = "test-link-signing-key-0123456789"
TARGETS = ("oauth_connect", "oauth_callback", "oauth_disconnect")
CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar.events.readonly"

ANNA = ("acme", "m-anna", "anna@northwind-cs.com")
CARL = ("acme", "m-carl", "carl@northwind-cs.com")
BOB = ("globex", "m-bob", "bob@globex-cs.com")


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: str

    @property
    def location(self) -> str:
        return self.headers.get("Location", "")


@dataclass
class Sandbox:
    project: str
    standin: GoogleStandIn
    db: firestore.Client
    subscriber: pubsub_v1.SubscriberClient
    subscription: str
    clients: dict[str, Any]
    replies: list[Reply] = field(default_factory=list)  # every answer of OUR functions

    # --- the browser ----------------------------------------------------------------------------

    def get(self, url: str) -> Reply:
        return self.request("GET", url)

    def request(self, method: str, url: str) -> Reply:
        parts = urlsplit(url)
        if url.startswith(self.standin.base_url):
            answer = requests.request(method, url, allow_redirects=False, timeout=10)
            return Reply(answer.status_code, dict(answer.headers), answer.text)
        assert url.startswith(BASE), url
        target = parts.path.strip("/")
        response = self.clients[target].open(parts.path, method=method, query_string=parts.query)
        reply = Reply(response.status_code, dict(response.headers), response.get_data(as_text=True))
        self.replies.append(reply)
        return reply

    def connect(self, who: tuple[str, str, str]) -> Reply:
        """The whole browser round trip: link -> consent -> callback."""
        consent = self.get(self.link(LinkPurpose.CONNECT, who))
        assert consent.status == 302, consent.body
        google = self.get(consent.location)
        assert google.status == 302, google.body
        assert google.location.startswith(CALLBACK_URL)
        return self.get(google.location)

    def consent_redirect(self, who: tuple[str, str, str]) -> str:
        """Up to Google's redirect back (the callback URL the browser is about to open)."""
        consent = self.get(self.link(LinkPurpose.CONNECT, who))
        assert consent.status == 302, consent.body
        google = self.get(consent.location)
        assert google.status == 302, google.body
        return google.location

    # --- links, state, inspection ---------------------------------------------------------------

    def link(
        self, purpose: LinkPurpose, who: tuple[str, str, str], expires_in: timedelta = timedelta(minutes=15)
    ) -> str:
        """A link as `calsync connect-link` / `disconnect-link` signs it (a disconnect link for
        the member's connection as it is now)."""
        tenant, member, _ = who
        connection = None
        if purpose is LinkPurpose.DISCONNECT:
            connection = links.connection_marker((self.member(who).get("calendar") or {}).get("connectedAt"))
        expires_at = datetime.now(UTC) + expires_in
        params = links.sign_link(LINK_KEY, purpose, tenant, member, expires_at, connection)
        return links.link_url(CONNECT_URL if purpose is LinkPurpose.CONNECT else DISCONNECT_URL, params)

    def member(self, who: tuple[str, str, str]) -> dict[str, Any]:
        tenant, member, _ = who
        snapshot = self.db.collection("tenants").document(tenant).collection("members").document(member).get()
        return snapshot.to_dict() or {}

    def secret_states(self, who: tuple[str, str, str]) -> dict[int, str]:
        return self.standin.secrets.states(self.project, secret_id(who[0], who[1]))

    def stored_token(self, who: tuple[str, str, str]) -> str:
        return str(bootstrap.token_vault().read(who[0], who[1]))

    def snapshot(self) -> dict[str, Any]:
        """Everything a failed request must leave as it was: Firestore and the secrets."""
        documents = {}
        for tenant in ("acme", "globex"):
            for doc in self.db.collection("tenants").document(tenant).collection("members").stream():
                documents[f"{tenant}/{doc.id}"] = doc.to_dict()
        states = {doc.id: doc.to_dict() for doc in self.db.collection("oauthStates").stream()}
        secrets = {
            r.secret_id: [(v.number, v.state, bytes(v.data)) for v in r.versions]
            for r in self.standin.secrets.list(self.project)
        }
        return {"members": documents, "states": states, "secrets": secrets}

    def jobs(self) -> list[SyncJob]:
        received = []
        while True:
            response = self.subscriber.pull(
                subscription=self.subscription, max_messages=100, return_immediately=True, timeout=10
            )
            if not response.received_messages:
                return received
            received.extend(decode_job(m.message.data) for m in response.received_messages)
            self.subscriber.acknowledge(
                subscription=self.subscription, ack_ids=[m.ack_id for m in response.received_messages]
            )

    def refresh_status(self, token: str) -> tuple[int, str]:
        """What Google's token endpoint says to a refresh with this token."""
        answer = requests.post(
            self.standin.token_uri,
            data={
                "grant_type": "refresh_token",
                "refresh_token": token,
                "client_id": self.standin.client_id,
                "client_secret": self.standin.client_secret,
            },
            timeout=10,
        )
        return answer.status_code, answer.json().get("error", "")


def seed(db: firestore.Client) -> None:
    for tenant, member, email in (ANNA, CARL, BOB):
        db.collection("tenants").document(tenant).set({"name": tenant, "internalDomains": []})
        db.collection("tenants").document(tenant).collection("members").document(member).set(
            {"email": email, "name": member[2:].title(), "calendar": {"status": "not_connected"}}
        )


@contextmanager
def open_sandbox(
    firestore_project: str, firestore_client: firestore.Client, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Sandbox]:
    """The three OAuth functions served in-process, the stand-in, the emulators, and the seed."""
    standin = GoogleStandIn(redirect_uris=[CALLBACK_URL]).start()
    topic = f"sync-{uuid.uuid4().hex[:8]}"
    env = {
        "CALSYNC_OAUTH_CLIENT_ID": standin.client_id,
        "CALSYNC_OAUTH_CLIENT_SECRET": standin.client_secret,
        "CALSYNC_OAUTH_REDIRECT_URI": CALLBACK_URL,
        "CALSYNC_CONNECT_URL": CONNECT_URL,
        "CALSYNC_DISCONNECT_URL": DISCONNECT_URL,
        "CALSYNC_OAUTH_AUTH_URI": standin.auth_uri,
        "CALSYNC_OAUTH_TOKEN_URI": standin.token_uri,
        "CALSYNC_OAUTH_REVOKE_URI": standin.revoke_uri,
        "CALSYNC_SECRET_MANAGER_ENDPOINT": standin.secret_manager_endpoint,
        "CALSYNC_LINK_SIGNING_KEY": LINK_KEY,
        "CALSYNC_SYNC_TOPIC": topic,
        # The sandbox's plain-http Google: tests only.
        "OAUTHLIB_INSECURE_TRANSPORT": "1",
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CALSYNC_RETURN_URL", raising=False)
    monkeypatch.delenv("OAUTHLIB_RELAX_TOKEN_SCOPE", raising=False)
    bootstrap.reset()
    seed(firestore_client)
    publisher = pubsub_v1.PublisherClient()
    topic_path = publisher.topic_path(firestore_project, topic)
    publisher.create_topic(name=topic_path)
    subscriber = pubsub_v1.SubscriberClient()
    subscription = subscriber.subscription_path(firestore_project, f"{topic}-sub")
    subscriber.create_subscription(name=subscription, topic=topic_path)
    clients = {t: functions_framework.create_app(target=t, source=MAIN).test_client() for t in TARGETS}
    try:
        yield Sandbox(firestore_project, standin, firestore_client, subscriber, subscription, clients)
    finally:
        standin.stop()
        bootstrap.reset()


def query(url: str) -> dict[str, str]:
    """The query parameters of a URL (first value of each)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
