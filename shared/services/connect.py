"""Connecting and disconnecting calendars (docs/reference.md#connecting-a-calendar): signed links, the OAuth
consent, the callback, disconnect and `set-token`.

Use cases, each reading through ports and deciding in plain code:

- `start_connect(link params)` -> Google's consent URL: the link proves who the member is; a
  fresh random `state` (single use, 10 minutes) is stored server-side under sha256(state), bound
  to the tenant and the member. The PKCE verifier is bound to the state cryptographically:
  HMAC(the PKCE key derived from CALSYNC_LINK_SIGNING_KEY, state), recomputed at the callback,
  so it is never stored (no Firestore reader or SDK debug log of a Firestore write can see it).
- `complete_connect(callback params)` -> CallbackOutcome. Nothing is written for a missing,
  unknown, expired or used state, or a missing code (ConsentError). The code is exchanged
  before the state is consumed, so a token endpoint failure leaves the state usable for a
  retry; the state is then consumed atomically (one winner). A grant broader than asked, or
  from a Google account that is not the member's own (shared.domain.consent), is revoked at
  Google and refused with nothing else changed (the state stays consumed: the code is spent
  anyway; a fresh connect link works). A grant without the calendar scope records why. Then
  the refresh token is stored (Secret Manager failure: the member is not touched), and only
  then the member marked connected and a first sync queued.
- `disconnect(tenant, member)`: revoke at Google, destroy the secret, mark `disconnected`. A
  token Google considers invalid or refuses to revoke does not stop it (retrying cannot help);
  a transient failure at Google does, and changes nothing the retry cannot finish.
- `set_token(tenant, member, token)`: store as the callback does; `googleEmail` is left for the
  first sync to fill in.

What raises what: LinkError / ConsentError / InvalidInput (bad request: 4xx, no change),
NotFound (unknown member), TransientError (Google or Firestore unavailable: retry later),
PermanentError (misconfiguration), from the ports as documented there.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from shared.domain import consent, links
from shared.domain.calendar_state import CalendarUpdate, connected, consent_not_given, disconnected
from shared.domain.keys import KeyPurpose, derive_key
from shared.domain.links import LinkClaims, LinkError, LinkErrorKind, LinkPurpose
from shared.domain.models import ConnectionStatus, Member, Tenant
from shared.errors import (
    CalsyncError,
    ConfigError,
    InvalidInput,
    PermanentError,
    TokenMissing,
    TransientError,
)
from shared.logs import get_logger
from shared.services.channels import ChannelRetirer
from shared.services.ports import (
    Clock,
    JobPublisher,
    JobReason,
    MemberStore,
    OAuthGrant,
    OAuthProvider,
    OAuthStateStore,
    PendingConsent,
    SyncJob,
    TenantStore,
    TokenVault,
)

STATE_TTL = timedelta(minutes=10)
_MAX_STATE_LENGTH = 256
_MAX_CODE_LENGTH = 2048
_MAX_REFRESH_TOKEN_BYTES = 64 * 1024  # Secret Manager's payload limit

DENIED_MESSAGE = "Google consent was declined (access_denied): calendar not connected"
SCOPE_MISSING_MESSAGE = (
    "Calendar access was not granted (the calendar permission was unticked on Google's consent "
    "screen): calendar not connected; open the connect link again and allow calendar access"
)


# --- outcomes and errors ------------------------------------------------------------------------


class ConsentErrorKind(StrEnum):
    MISSING_STATE = "missing_state"
    UNKNOWN_STATE = "unknown_state"
    EXPIRED_STATE = "expired_state"
    USED_STATE = "used_state"
    MISSING_CODE = "missing_code"


class ConsentError(InvalidInput):
    """The callback request cannot be trusted or completed; nothing was changed."""

    def __init__(self, kind: ConsentErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


class CallbackResult(StrEnum):
    CONNECTED = "connected"
    DENIED = "denied"  # the member declined (access_denied) or Google reported another error
    SCOPE_MISSING = "scope_missing"
    SCOPE_TOO_BROAD = "scope_too_broad"  # revoked, nothing changed
    WRONG_ACCOUNT = "wrong_account"  # not the member's own Google account: revoked, nothing changed


@dataclass(frozen=True)
class CallbackOutcome:
    result: CallbackResult
    tenant_id: str
    member_id: str
    google_email: str | None = None
    first_sync_queued: bool = False
    expected_email: str | None = None  # WRONG_ACCOUNT: the member's own address


def state_key(state: str) -> str:
    """The id of the state's document: the raw state never reaches Firestore."""
    return hashlib.sha256(state.encode("utf-8")).hexdigest()


def pkce_verifier(key: str, state: str) -> str:
    """The PKCE code verifier of a consent: HMAC-SHA256(the PKCE key derived from `key`, state),
    base64url (43 characters of [A-Za-z0-9_-], RFC 7636's minimum length and alphabet; 256 bits)."""
    message = f"calsync-pkce-v1\x1f{state}".encode()
    digest = hmac.new(derive_key(key, KeyPurpose.OAUTH_PKCE), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


# --- the service --------------------------------------------------------------------------------


class ConnectService:
    def __init__(
        self,
        *,
        members: MemberStore,
        tenants: TenantStore,
        states: OAuthStateStore,
        vault: TokenVault,
        oauth: OAuthProvider,
        jobs: JobPublisher | None,
        clock: Clock,
        link_key: str,
        state_ttl: timedelta = STATE_TTL,
        channels: ChannelRetirer | None = None,
    ) -> None:
        self._channels = channels
        self._members = members
        self._tenants = tenants
        self._states = states
        self._vault = vault
        self._oauth = oauth
        self._jobs = jobs
        self._clock = clock
        self._link_key = link_key
        self._state_ttl = state_ttl
        self._log = get_logger(component="connect")

    # links -----------------------------------------------------------------------------------

    def signed_link(
        self, purpose: LinkPurpose, tenant_id: str, member_id: str, base_url: str, ttl: timedelta
    ) -> str:
        """A signed link for an existing member; a disconnect link is bound to the member's
        current connection. Raises NotFound, TransientError, ConfigError."""
        key = self._key()
        member = self._members.get_member(tenant_id, member_id)
        connection = (
            links.connection_marker(member.calendar.connected_at)
            if purpose is LinkPurpose.DISCONNECT
            else None
        )
        expires_at = self._clock.now() + ttl
        params = links.sign_link(key, purpose, tenant_id, member_id, expires_at, connection)
        return links.link_url(base_url, params)

    def verify_link(self, purpose: LinkPurpose, params: Mapping[str, str]) -> tuple[LinkClaims, Member]:
        """The claims of a valid link and its member. A disconnect link is used up once the
        connection it names has ended or been replaced. Raises LinkError, NotFound, TransientError."""
        claims = links.verify_link(self._key(), purpose, params, self._clock.now())
        member = self._members.get_member(claims.tenant_id, claims.member_id)
        if purpose is LinkPurpose.DISCONNECT and (
            member.calendar.status is ConnectionStatus.DISCONNECTED
            or claims.connection != links.connection_marker(member.calendar.connected_at)
        ):
            raise LinkError(
                LinkErrorKind.USED,
                "This disconnect link was already used, or the calendar was connected again since: "
                "ask for a new one.",
            )
        return claims, member

    def _key(self) -> str:
        if not self._link_key:
            raise ConfigError("CALSYNC_LINK_SIGNING_KEY is required here but not set")
        return self._link_key

    # connect ---------------------------------------------------------------------------------

    def start_connect(self, params: Mapping[str, str]) -> str:
        """Verify a connect link and start a consent: Google's consent URL to redirect to.
        Raises LinkError, NotFound, TransientError."""
        claims, member = self.verify_link(LinkPurpose.CONNECT, params)
        now = self._clock.now()
        state = secrets.token_urlsafe(32)  # 256 bits
        verifier = pkce_verifier(self._key(), state)
        pending = PendingConsent(
            tenant_id=claims.tenant_id,
            member_id=claims.member_id,
            created_at=now,
            expires_at=now + self._state_ttl,
        )
        self._states.create(state_key(state), pending)
        self._log.info("oauth consent started", tenant_id=claims.tenant_id, member_id=claims.member_id)
        return self._oauth.authorization_url(state, verifier, member.email)

    def complete_connect(self, params: Mapping[str, str]) -> CallbackOutcome:
        """Finish a consent from Google's redirect (`state`, `code` or `error`).
        Raises ConsentError and InvalidInput (nothing changed), NotFound, TransientError."""
        state = params.get("state") or ""
        if not state:
            raise ConsentError(ConsentErrorKind.MISSING_STATE, "The sign-in response has no state.")
        pending = self._pending(state)
        tenant_id, member_id = pending.tenant_id, pending.member_id
        error = params.get("error")
        code = params.get("code") or ""
        if not error and not code:
            raise ConsentError(
                ConsentErrorKind.MISSING_CODE, "The sign-in response has no authorization code."
            )
        member = self._members.get_member(tenant_id, member_id)
        if error:
            return self._not_given(state, pending, error)
        if len(code) > _MAX_CODE_LENGTH:
            raise InvalidInput("The authorization code is malformed.")
        tenant = self._tenants.get_tenant(tenant_id)
        # Exchange first: a token endpoint failure (TransientError) or a refused code
        # (InvalidInput) leaves the state as it was, so nothing changes and a retry can work.
        grant = self._oauth.exchange_code(code, pkce_verifier(self._key(), state))
        self._consume(state, pending)
        refused = self._refusal(grant, member, tenant)
        if refused is not None:
            return refused

        self._store_and_connect(tenant_id, member, grant.refresh_token, grant.email)
        queued = self._queue_first_sync(tenant_id, member_id)
        account_changed = member.calendar.google_email != grant.email
        self._log.info(
            "member connected",
            tenant_id=tenant_id,
            member_id=member_id,
            account_changed=account_changed,
            first_sync_queued=queued,
        )
        return CallbackOutcome(CallbackResult.CONNECTED, tenant_id, member_id, grant.email, queued)

    def _not_given(self, state: str, pending: PendingConsent, error: str) -> CallbackOutcome:
        """Google redirected with `error` (the member declined, or another error): record why."""
        tenant_id, member_id = pending.tenant_id, pending.member_id
        self._consume(state, pending)
        reason = _safe_error_code(error)
        message = (
            DENIED_MESSAGE
            if reason == "access_denied"
            else f"Google reported {reason}: calendar not connected"
        )
        self._members.update_calendar(tenant_id, member_id, consent_not_given(message))
        self._log.warning("oauth consent not given", tenant_id=tenant_id, member_id=member_id, error=reason)
        return CallbackOutcome(CallbackResult.DENIED, tenant_id, member_id)

    def _refusal(self, grant: OAuthGrant, member: Member, tenant: Tenant) -> CallbackOutcome | None:
        """The outcome of a grant that must not be kept, or None for a grant to store.
        A broader grant or another person's account is revoked at Google and changes nothing;
        a grant without calendar access only records why on the member."""
        tenant_id, member_id = tenant.id, member.id
        log = self._log.bind(tenant_id=tenant_id, member_id=member_id)
        excess = consent.excess_scopes(grant.granted_scopes)
        if excess:
            self._discard(grant, log)
            log.warning("oauth grant broader than requested; revoked", scopes=sorted(excess))
            return CallbackOutcome(CallbackResult.SCOPE_TOO_BROAD, tenant_id, member_id)
        if not consent.is_calendar_granted(grant.granted_scopes):
            self._members.update_calendar(tenant_id, member_id, consent_not_given(SCOPE_MISSING_MESSAGE))
            log.warning("oauth consent without calendar scope")
            return CallbackOutcome(CallbackResult.SCOPE_MISSING, tenant_id, member_id, grant.email)
        if not consent.is_allowed_account(grant.email, member, tenant):
            self._discard(grant, log)
            log.warning(
                "oauth consent by another Google account; revoked", verified_email=grant.email is not None
            )
            return CallbackOutcome(
                CallbackResult.WRONG_ACCOUNT, tenant_id, member_id, grant.email, expected_email=member.email
            )
        return None

    def _discard(self, grant: OAuthGrant, log: Any) -> None:
        """Revoke a refused grant at Google. Best effort: the token is not kept anywhere, and
        the code it came from is spent, so a failure here must not turn the refusal into a retry."""
        try:
            self._oauth.revoke(grant.refresh_token)
        except CalsyncError as error:
            log.error(
                "refused oauth grant not revoked at Google", error_kind=type(error).__name__, error=str(error)
            )

    def _pending(self, state: str) -> PendingConsent:
        unknown = ConsentError(
            ConsentErrorKind.UNKNOWN_STATE, "This sign-in is unknown: open your connect link again."
        )
        if len(state) > _MAX_STATE_LENGTH:
            raise unknown
        pending = self._states.get(state_key(state))
        if pending is None:
            raise unknown
        if pending.consumed_at is not None:
            self._log.warning("oauth state reused", tenant_id=pending.tenant_id, member_id=pending.member_id)
            raise ConsentError(
                ConsentErrorKind.USED_STATE,
                "This sign-in was already completed: open your connect link again.",
            )
        if self._clock.now() >= pending.expires_at:
            raise ConsentError(
                ConsentErrorKind.EXPIRED_STATE,
                "This sign-in took too long and expired: open your connect link again.",
            )
        return pending

    def _consume(self, state: str, pending: PendingConsent) -> None:
        if not self._states.consume(state_key(state), pending, self._clock.now()):
            self._log.warning("oauth state reused", tenant_id=pending.tenant_id, member_id=pending.member_id)
            raise ConsentError(
                ConsentErrorKind.USED_STATE,
                "This sign-in was already completed: open your connect link again.",
            )

    def _queue_first_sync(self, tenant_id: str, member_id: str) -> bool:
        """Best effort: the member is due now anyway (`next_sync_at`), so the scheduler's next
        run picks it up if this publish fails."""
        if self._jobs is None:
            return False
        try:
            self._jobs.publish([SyncJob(tenant_id, member_id, JobReason.CONNECTED)])
        except TransientError as error:
            self._log.warning(
                "first sync not queued; the scheduler will pick the member up",
                tenant_id=tenant_id,
                member_id=member_id,
                error=str(error),
            )
            return False
        return True

    # disconnect and set-token ------------------------------------------------------------------

    def disconnect(self, tenant_id: str, member_id: str) -> None:
        """Revoke the member's consent at Google, destroy its secret, mark it `disconnected`
        (interactions stay). Idempotent: after a failure, running it again finishes the job.
        Raises NotFound (unknown member), TransientError, PermanentError."""
        member = self._members.get_member(tenant_id, member_id)
        try:
            token: str | None = self._vault.read(tenant_id, member_id)
        except TokenMissing:  # never connected, or a disconnect that stopped half-way
            token = None
        if self._channels is not None:  # stopped while the token can still stop it
            self._channels.retire(member.calendar, token)
        revoked = bool(token) and self._revoke_for_disconnect(tenant_id, member_id, str(token))
        self._vault.destroy(tenant_id, member_id)
        self._members.update_calendar(tenant_id, member_id, disconnected())
        self._log.info("member disconnected", tenant_id=tenant_id, member_id=member_id, revoked=revoked)

    def _revoke_for_disconnect(self, tenant_id: str, member_id: str, token: str) -> bool:
        """Revoke before destroying. TransientError propagates (nothing changed yet, so the retry
        revokes); a permanent refusal cannot be retried away, and keeping the token would leave
        the member syncing against their wish: the disconnect goes on and the token is destroyed
        here, so nothing can use it any more (the member can also remove the grant in their
        Google account). Returns whether Google confirmed the revocation."""
        try:
            self._oauth.revoke(token)
        except PermanentError as error:
            self._log.error(
                "Google refused to revoke the token; disconnecting anyway (the token is destroyed)",
                tenant_id=tenant_id,
                member_id=member_id,
                error=str(error),
            )
            return False
        return True

    def set_token(self, tenant_id: str, member_id: str, refresh_token: str) -> bool:
        """Store a refresh token as the callback does and mark the member connected now
        (Google account unknown until the first sync: the cursor is reset). Returns whether the
        first sync was queued. Raises InvalidInput, NotFound, TransientError."""
        token = refresh_token.strip()
        if not token or any(c.isspace() for c in token) or len(token.encode()) > _MAX_REFRESH_TOKEN_BYTES:
            raise InvalidInput("the refresh token must be one non-empty line without spaces")
        member = self._members.get_member(tenant_id, member_id)
        self._store_and_connect(tenant_id, member, token, None)
        queued = self._queue_first_sync(tenant_id, member_id)
        self._log.info(
            "refresh token set", tenant_id=tenant_id, member_id=member_id, first_sync_queued=queued
        )
        return queued

    def _store_and_connect(
        self, tenant_id: str, member: Member, refresh_token: str, google_email: str | None
    ) -> None:
        """Store the token, then mark the member connected. If marking fails for a member that
        was not connected, the token just stored is revoked and its secret destroyed, so no live
        token is left behind for a member who is not connected (README.md#reliability); for a
        member connected before, the new token is kept (the old versions are gone already) and
        the connection stays as it was. Raises what the ports raise."""
        self._vault.store(tenant_id, member.id, refresh_token)
        connection = connected(member.calendar, google_email, now=self._clock.now())
        try:
            self._retire_replaced_channel(member, connection)
            self._members.update_calendar(tenant_id, member.id, connection)
        except CalsyncError:
            if member.calendar.status is not ConnectionStatus.CONNECTED:
                with contextlib.suppress(CalsyncError):  # best effort: the error raised is the one to report
                    self._oauth.revoke(refresh_token)
                with contextlib.suppress(CalsyncError):
                    self._vault.destroy(tenant_id, member.id)
            raise

    def _retire_replaced_channel(self, member: Member, connection: CalendarUpdate) -> None:
        """A connection that drops the push channel (another or an unknown Google account):
        its lookup entry goes, so its notifications are refused (it watched the old calendar)."""
        if self._channels is not None and connection.push_channel_id is None:
            self._channels.retire(member.calendar, None)


def _safe_error_code(value: str) -> str:
    cleaned = "".join(c for c in value if c.isalnum() or c in "_-.")[:40]
    return cleaned or "an error"
