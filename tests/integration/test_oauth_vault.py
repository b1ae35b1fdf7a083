"""`SecretManagerTokenVault` with the production Secret Manager client (REST) against the
stand-in: secret naming, rotation, reading after a rolled-back store, error kinds."""

from __future__ import annotations

import hashlib

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from shared.adapters.secrets import SecretManagerTokenVault, secret_id
from shared.errors import PermanentError, TokenMissing, TransientError
from shared.sandbox.google_standin import GoogleStandIn

PROJECT = "vault-project"


@pytest.fixture
def vault(standin: GoogleStandIn) -> SecretManagerTokenVault:
    client = secretmanager.SecretManagerServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=standin.secret_manager_endpoint.rstrip("/")),
    )
    return SecretManagerTokenVault(client, PROJECT)


def test_secret_id_follows_the_architecture_note() -> None:
    expected = "calsync-rt-" + hashlib.sha256(b"acme\x1fm-1").hexdigest()[:40]
    assert secret_id("acme", "m-1") == expected
    assert secret_id("ab", "c") != secret_id("a", "bc")


def test_store_creates_labels_and_rotates(standin: GoogleStandIn, vault: SecretManagerTokenVault) -> None:
    vault.store("Acme Corp", "m-1", "token-one")
    record = standin.secrets.get(PROJECT, secret_id("Acme Corp", "m-1"))
    assert record is not None
    assert record.labels == {"calsync-tenant": "acme_corp", "calsync-member": "m-1"}
    assert vault.read("Acme Corp", "m-1") == "token-one"

    vault.store("Acme Corp", "m-1", "token-two")
    vault.store("Acme Corp", "m-1", "token-three")
    assert standin.secrets.states(PROJECT, secret_id("Acme Corp", "m-1")) == {
        1: "DESTROYED",
        2: "DESTROYED",
        3: "ENABLED",
    }
    assert vault.read("Acme Corp", "m-1") == "token-three"


def test_read_of_a_member_without_a_secret_says_the_token_is_missing(vault: SecretManagerTokenVault) -> None:
    with pytest.raises(TokenMissing):
        vault.read("acme", "nobody")


def test_destroy_removes_every_version_and_the_secret_and_is_idempotent(
    standin: GoogleStandIn, vault: SecretManagerTokenVault
) -> None:
    vault.store("acme", "m-1", "a")
    vault.store("acme", "m-1", "b")
    vault.destroy("acme", "m-1")
    assert standin.secrets.get(PROJECT, secret_id("acme", "m-1")) is None
    vault.destroy("acme", "m-1")
    vault.destroy("acme", "never-stored")
    with pytest.raises(TokenMissing):
        vault.read("acme", "m-1")


def test_a_store_that_fails_after_adding_rolls_back_and_the_old_token_still_reads(
    standin: GoogleStandIn, vault: SecretManagerTokenVault
) -> None:
    vault.store("acme", "m-1", "old")
    standin.faults.inject("secretmanager", delay_s=0.001)  # addVersion goes through
    standin.faults.inject("secretmanager", status=503)  # listing versions fails
    with pytest.raises(TransientError):
        vault.store("acme", "m-1", "new")
    assert standin.secrets.states(PROJECT, secret_id("acme", "m-1")) == {1: "ENABLED", 2: "DESTROYED"}
    assert vault.read("acme", "m-1") == "old"  # `latest` is destroyed: falls back to the newest enabled
    vault.store("acme", "m-1", "newer")
    assert standin.secrets.states(PROJECT, secret_id("acme", "m-1")) == {
        1: "DESTROYED",
        2: "DESTROYED",
        3: "ENABLED",
    }


@pytest.mark.parametrize(
    ("status", "kind"), [(500, TransientError), (429, TransientError), (403, PermanentError)]
)
def test_errors_are_sorted_into_kinds(
    standin: GoogleStandIn, vault: SecretManagerTokenVault, status: int, kind: type[Exception]
) -> None:
    standin.faults.inject("secretmanager", status=status, count=10)
    with pytest.raises(kind) as caught:
        vault.store("acme", "m-1", "secret-token-value")
    assert "secret-token-value" not in str(caught.value)
    standin.faults.clear()
    assert standin.secrets.states(PROJECT, secret_id("acme", "m-1")) == {}


def test_a_concurrently_created_secret_is_tolerated(
    standin: GoogleStandIn, vault: SecretManagerTokenVault
) -> None:
    # Another instance created the secret between our addVersion (404) and our createSecret (409).
    vault._client.create_secret(
        parent=f"projects/{PROJECT}",
        secret_id=secret_id("acme", "m-1"),
        secret={"replication": {"automatic": {}}},
    )
    standin.faults.inject("secretmanager", status=404)  # what our addVersion saw before that
    vault.store("acme", "m-1", "t")
    assert vault.read("acme", "m-1") == "t"
    assert standin.secrets.states(PROJECT, secret_id("acme", "m-1")) == {1: "ENABLED"}
