"""Refresh tokens in Secret Manager (the `TokenVault` port): one secret per member.

Secret id: `calsync-rt-` + sha256(tenantId + "\\x1f" + memberId) hex[:40] (README, "Data in Firestore"),
labelled `calsync-tenant` / `calsync-member`. Storing adds a version (creating the secret when it
does not exist yet, tolerating a concurrent create) and then destroys every older version, so at
most one version is ever ENABLED. Destroying destroys every version and deletes the secret.

Errors: no secret or no enabled version -> TokenMissing (reading only; elsewhere missing is
success), 429/5xx/timeouts/network -> TransientError, anything else -> PermanentError. Payloads
never appear in messages.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from typing import Any

from shared.errors import PermanentError, TokenMissing, TransientError

SECRET_PREFIX = "calsync-rt-"  # noqa: S105 - a name prefix, not a secret
_TIMEOUT_S = 30.0
_LABEL_MAX = 63


def secret_id(tenant_id: str, member_id: str) -> str:
    """The id of the member's secret (stable: a reconnect adds a version to the same secret)."""
    digest = hashlib.sha256(f"{tenant_id}\x1f{member_id}".encode()).hexdigest()
    return SECRET_PREFIX + digest[:40]


def _label(value: str) -> str:
    cleaned = re.sub(r"[^a-z0-9_-]", "_", value.lower())[:_LABEL_MAX]
    return cleaned or "_"


class SecretManagerTokenVault:
    """`TokenVault` over google-cloud-secret-manager (REST transport; see shared.bootstrap)."""

    def __init__(self, client: Any, project: str, timeout_s: float = _TIMEOUT_S) -> None:
        self._client = client
        self._project = project
        self._timeout_s = timeout_s
        # At DEBUG the client logs request and response payloads (our tokens) as structured
        # `extra` fields: pin its logger to INFO so no process-wide DEBUG can print them.
        sdk_logger = logging.getLogger("google.cloud.secretmanager_v1")
        sdk_logger.setLevel(max(sdk_logger.level, logging.INFO))

    def _secret_name(self, tenant_id: str, member_id: str) -> str:
        return f"projects/{self._project}/secrets/{secret_id(tenant_id, member_id)}"

    def read(self, tenant_id: str, member_id: str) -> str:
        """The newest ENABLED version's token. Raises TokenMissing (no secret or no enabled version),
        TransientError, PermanentError."""
        from google.api_core import exceptions

        secret = self._secret_name(tenant_id, member_id)
        missing = TokenMissing(f"no refresh token stored for member {member_id!r} of tenant {tenant_id!r}")
        try:
            try:
                response = self._client.access_secret_version(
                    name=f"{secret}/versions/latest", timeout=self._timeout_s
                )
            except exceptions.GoogleAPICallError as error:
                if not _is_failed_precondition(error):
                    raise
                # `latest` is the newest version even when destroyed (a store that failed and
                # was rolled back): fall back to the newest ENABLED one.
                enabled = self._enabled_version(secret)
                if enabled is None:
                    raise missing from None
                response = self._client.access_secret_version(name=enabled, timeout=self._timeout_s)
        except exceptions.NotFound:
            raise missing from None
        except _sdk_errors() as error:
            if _is_failed_precondition(error):
                raise missing from None
            raise _translate(error, "reading the refresh token") from None
        return bytes(response.payload.data).decode("utf-8")

    def _enabled_version(self, secret: str) -> str | None:
        from google.cloud import secretmanager

        enabled = secretmanager.SecretVersion.State.ENABLED
        versions = [
            v
            for v in self._client.list_secret_versions(parent=secret, timeout=self._timeout_s)
            if v.state == enabled
        ]
        if not versions:
            return None
        return str(max(versions, key=lambda v: int(v.name.rsplit("/", 1)[-1])).name)

    def store(self, tenant_id: str, member_id: str, refresh_token: str) -> None:
        """Add the token as a new version (creating the secret if needed), then destroy every
        older version. If the older versions cannot be destroyed, the new version is destroyed
        again (best effort) so a failed store leaves no extra live token behind.
        Raises TransientError, PermanentError."""
        from google.api_core import exceptions

        secret = self._secret_name(tenant_id, member_id)
        payload = {"data": refresh_token.encode("utf-8")}
        try:
            try:
                version = self._client.add_secret_version(
                    parent=secret, payload=payload, timeout=self._timeout_s
                )
            except exceptions.NotFound:
                self._create_secret(tenant_id, member_id)
                version = self._client.add_secret_version(
                    parent=secret, payload=payload, timeout=self._timeout_s
                )
        except _sdk_errors() as error:
            raise _translate(error, "storing the refresh token") from None
        try:
            self._destroy_versions(secret, keep=version.name)
        except Exception:
            with contextlib.suppress(Exception):  # the first failure is the one to report
                self._destroy_version(version.name)
            raise

    def destroy(self, tenant_id: str, member_id: str) -> None:
        """Destroy every version, then delete the secret; a missing secret is success.
        Raises TransientError, PermanentError."""
        from google.api_core import exceptions

        secret = self._secret_name(tenant_id, member_id)
        self._destroy_versions(secret, keep=None)
        try:
            self._client.delete_secret(name=secret, timeout=self._timeout_s)
        except exceptions.NotFound:
            return
        except _sdk_errors() as error:
            raise _translate(error, "deleting the secret") from None

    def _create_secret(self, tenant_id: str, member_id: str) -> None:
        from google.api_core import exceptions

        try:
            self._client.create_secret(
                parent=f"projects/{self._project}",
                secret_id=secret_id(tenant_id, member_id),
                secret={
                    "replication": {"automatic": {}},
                    "labels": {"calsync-tenant": _label(tenant_id), "calsync-member": _label(member_id)},
                },
                timeout=self._timeout_s,
            )
        except exceptions.Conflict:  # created meanwhile by a concurrent store: fine
            return

    def _destroy_versions(self, secret: str, keep: str | None) -> None:
        from google.api_core import exceptions
        from google.cloud import secretmanager

        destroyed = secretmanager.SecretVersion.State.DESTROYED
        try:
            versions = list(self._client.list_secret_versions(parent=secret, timeout=self._timeout_s))
        except exceptions.NotFound:
            return
        except _sdk_errors() as error:
            raise _translate(error, "listing secret versions") from None
        for version in versions:
            if version.name != keep and version.state != destroyed:
                self._destroy_version(version.name)

    def _destroy_version(self, name: str) -> None:
        from google.api_core import exceptions

        try:
            self._client.destroy_secret_version(name=name, timeout=self._timeout_s)
        except exceptions.NotFound:
            return  # gone
        except _sdk_errors() as error:
            if _is_failed_precondition(error):
                return  # destroyed already
            raise _translate(error, "destroying a secret version") from None


def _is_failed_precondition(error: BaseException) -> bool:
    """gRPC's FAILED_PRECONDITION (a destroyed or disabled version). Over REST it arrives as an
    HTTP 400 whose body says `"status": "FAILED_PRECONDITION"`."""
    from google.api_core import exceptions

    if isinstance(error, exceptions.FailedPrecondition):
        return True
    if not isinstance(error, exceptions.BadRequest) or error.response is None:
        return False
    try:
        body = error.response.json()
    except (ValueError, AttributeError, TypeError):
        return False
    return isinstance(body, dict) and (body.get("error") or {}).get("status") == "FAILED_PRECONDITION"


def _sdk_errors() -> tuple[type[BaseException], ...]:
    """What the Secret Manager client raises: API errors, retry give-ups, transport errors."""
    import requests
    from google.api_core import exceptions

    return (exceptions.GoogleAPIError, requests.RequestException, OSError)


def _translate(error: BaseException, doing: str) -> Exception:
    """A Secret Manager / transport error as one of our kinds (no payloads in the message)."""
    from google.api_core import exceptions

    if isinstance(error, TransientError | PermanentError):
        return error
    if isinstance(error, exceptions.RetryError | exceptions.DeadlineExceeded | exceptions.TooManyRequests):
        return TransientError(f"Secret Manager unavailable while {doing}: {type(error).__name__}")
    if isinstance(error, exceptions.GoogleAPICallError):
        code = error.code if isinstance(error.code, int) else 0
        if code >= 500 or code in (408, 429) or isinstance(error, exceptions.ServerError):
            return TransientError(f"Secret Manager answered {code or type(error).__name__} while {doing}")
        return PermanentError(f"Secret Manager refused {doing}: {type(error).__name__}")
    import requests

    if isinstance(error, requests.RequestException | ConnectionError | TimeoutError):
        return TransientError(f"Secret Manager could not be reached while {doing}: {type(error).__name__}")
    return PermanentError(f"unexpected error while {doing}: {type(error).__name__}")
