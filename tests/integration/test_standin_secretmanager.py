"""The stand-in's Secret Manager v1 REST API, driven through the production client."""

from __future__ import annotations

import pytest
from google.api_core import exceptions
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import secretmanager

from shared.sandbox.google_standin import GoogleStandIn
from shared.sandbox.standin.secretmanager import crc32c

PROJECT = "calsync-test"


@pytest.fixture
def client(standin: GoogleStandIn) -> secretmanager.SecretManagerServiceClient:
    return secretmanager.SecretManagerServiceClient(
        transport="rest",
        credentials=AnonymousCredentials(),
        client_options=ClientOptions(api_endpoint=standin.secret_manager_endpoint),
    )


def create(client: secretmanager.SecretManagerServiceClient, secret_id: str) -> secretmanager.Secret:
    return client.create_secret(
        request={
            "parent": f"projects/{PROJECT}",
            "secret_id": secret_id,
            "secret": {"replication": {"automatic": {}}, "labels": {"calsync-tenant": "t1"}},
        }
    )


def add(
    client: secretmanager.SecretManagerServiceClient, secret: str, data: bytes
) -> secretmanager.SecretVersion:
    return client.add_secret_version(
        request={"parent": secret, "payload": {"data": data, "data_crc32c": crc32c(data)}}
    )


def test_lifecycle_create_add_access_disable_destroy_delete(
    standin: GoogleStandIn, client: secretmanager.SecretManagerServiceClient
) -> None:
    secret = create(client, "calsync-rt-abc")
    assert secret.name.endswith("/secrets/calsync-rt-abc")
    assert dict(secret.labels) == {"calsync-tenant": "t1"}

    v1 = add(client, secret.name, b"1//first")
    v2 = add(client, secret.name, b"1//second")
    assert v1.name.endswith("/versions/1")
    assert v2.name.endswith("/versions/2")
    assert v2.state == secretmanager.SecretVersion.State.ENABLED

    latest = client.access_secret_version(name=f"projects/{PROJECT}/secrets/calsync-rt-abc/versions/latest")
    assert latest.payload.data == b"1//second"
    assert latest.payload.data_crc32c == crc32c(b"1//second")
    assert latest.name == v2.name

    client.disable_secret_version(name=v1.name)
    with pytest.raises(exceptions.BadRequest, match="DISABLED"):
        client.access_secret_version(name=v1.name)
    client.enable_secret_version(name=v1.name)
    assert client.access_secret_version(name=v1.name).payload.data == b"1//first"

    destroyed = client.destroy_secret_version(name=v1.name)
    assert destroyed.state == secretmanager.SecretVersion.State.DESTROYED
    assert standin.secrets.states(PROJECT, "calsync-rt-abc") == {1: "DESTROYED", 2: "ENABLED"}
    with pytest.raises(exceptions.BadRequest, match="DESTROYED"):
        client.access_secret_version(name=v1.name)

    listed = list(client.list_secret_versions(parent=secret.name))
    assert [v.name.rsplit("/", 1)[1] for v in listed] == ["2", "1"]  # newest first
    enabled = list(client.list_secret_versions(request={"parent": secret.name, "filter": "state:ENABLED"}))
    assert [v.name for v in enabled] == [v2.name]

    client.delete_secret(name=secret.name)
    assert standin.secrets.get(PROJECT, "calsync-rt-abc") is None
    with pytest.raises(exceptions.NotFound):
        client.get_secret(name=f"projects/{PROJECT}/secrets/calsync-rt-abc")


def test_create_twice_is_conflict(client: secretmanager.SecretManagerServiceClient) -> None:
    create(client, "dup")
    with pytest.raises(exceptions.Conflict):
        create(client, "dup")


def test_unknown_secret_is_not_found(client: secretmanager.SecretManagerServiceClient) -> None:
    with pytest.raises(exceptions.NotFound):
        client.access_secret_version(name=f"projects/{PROJECT}/secrets/missing/versions/latest")
    with pytest.raises(exceptions.NotFound):
        client.add_secret_version(
            request={"parent": f"projects/{PROJECT}/secrets/missing", "payload": {"data": b"x"}}
        )
    with pytest.raises(exceptions.NotFound):
        client.delete_secret(name=f"projects/{PROJECT}/secrets/missing")


def test_names_carry_the_project_number_like_google(
    standin: GoogleStandIn, client: secretmanager.SecretManagerServiceClient
) -> None:
    secret = create(client, "numbered")
    number = secret.name.split("/")[1]
    assert number.isdigit()
    # Either form addresses the same secret.
    add(client, f"projects/{number}/secrets/numbered", b"v")
    assert (
        client.access_secret_version(name=f"projects/{PROJECT}/secrets/numbered/versions/1").payload.data
        == b"v"
    )
    assert standin.secrets.states(number, "numbered") == {1: "ENABLED"}


def test_latest_is_the_newest_version_even_when_disabled(
    client: secretmanager.SecretManagerServiceClient,
) -> None:
    secret = create(client, "latest-disabled")
    add(client, secret.name, b"old")
    newest = add(client, secret.name, b"new")
    client.disable_secret_version(name=newest.name)
    with pytest.raises(exceptions.BadRequest, match="DISABLED state"):
        client.access_secret_version(name=f"{secret.name}/versions/latest")


def test_checksum_mismatch_and_missing_replication_are_rejected(
    client: secretmanager.SecretManagerServiceClient,
) -> None:
    secret = create(client, "checked")
    with pytest.raises(exceptions.BadRequest, match="Checksum mismatch"):
        client.add_secret_version(
            request={"parent": secret.name, "payload": {"data": b"abc", "data_crc32c": crc32c(b"abd")}}
        )
    with pytest.raises(exceptions.BadRequest, match="replication"):
        client.create_secret(request={"parent": f"projects/{PROJECT}", "secret_id": "norep", "secret": {}})


def test_faults_surface_as_api_errors(
    standin: GoogleStandIn, client: secretmanager.SecretManagerServiceClient
) -> None:
    secret = create(client, "faulty")
    add(client, secret.name, b"x")
    standin.faults.inject("secretmanager", status=503, count=1)
    with pytest.raises(exceptions.ServiceUnavailable):
        client.access_secret_version(name=f"{secret.name}/versions/1", retry=None)
    assert client.access_secret_version(name=f"{secret.name}/versions/1").payload.data == b"x"
