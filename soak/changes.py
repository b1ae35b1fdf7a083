"""The random changes of a round: calendar edits made in the stand-in (create, move, cancel,
attendees added and removed, 410 resets) and directory edits (users and accounts added, moved,
removed), each drawn from the world's seeded rng and recorded in the world."""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from shared.sandbox.google_standin import GoogleStandIn
from soak.world import (
    COMPANIES,
    CONTACTS,
    DirectoryEdit,
    Meeting,
    Tenant,
    World,
    _name,
    company_domain,
    contact_email,
)

CALENDAR_KINDS = (
    "create",
    "move",
    "cancel_all",
    "cancel_one",
    "add_attendee",
    "remove_attendee",
    "reset_410",
)
DIRECTORY_KINDS = ("add_user", "move_user", "remove_user", "add_account", "add_domain", "remove_domain")


class Changer:
    def __init__(self, world: World, standin: GoogleStandIn) -> None:
        self.world = world
        self.standin = standin
        self.rng = world.rng

    # --- calendars -----------------------------------------------------------------------------

    def calendar_change(self) -> str:
        """One random calendar change; returns its kind."""
        kind = self.rng.choice(CALENDAR_KINDS)
        live = self.world.live_meetings()
        if kind == "create" or not live:
            members = [m for _, m in self.world.all_members()]
            self._publish(self.world.new_meeting(self.rng.choice(members)))
            return "create"
        meeting = self.rng.choice(live)
        actions: dict[str, Callable[[Meeting], None]] = {
            "move": self._move,
            "cancel_all": self._cancel_all,
            "cancel_one": self._cancel_one,
            "add_attendee": self._add_attendee,
            "remove_attendee": self._remove_attendee,
            "reset_410": self._reset,
        }
        actions[kind](meeting)
        return kind

    def _publish(self, meeting: Meeting) -> None:
        for holder in meeting.holders:
            self.standin.calendar(holder).upsert_event(self.world.copy_for(meeting, holder))

    def _move(self, meeting: Meeting) -> None:
        shift = timedelta(hours=self.rng.choice((-48, -3, -1, 1, 2, 24, 72)))
        for bound in ("start", "end"):
            moved = datetime.fromisoformat(meeting.payload[bound]["dateTime"]) + shift
            meeting.payload[bound] = {**meeting.payload[bound], "dateTime": moved.isoformat()}
        self._publish(meeting)

    def _cancel_all(self, meeting: Meeting) -> None:
        """The organizer deletes the meeting: cancelled on every holder's calendar."""
        for holder in meeting.holders:
            self.standin.calendar(holder).cancel_event(meeting.payload["id"])
        meeting.cancelled = True

    def _cancel_one(self, meeting: Meeting) -> None:
        """One holder removes it from their calendar; the others keep it."""
        holder = self.rng.choice(meeting.holders)
        self.standin.calendar(holder).cancel_event(meeting.payload["id"])
        meeting.holders.remove(holder)

    def _add_attendee(self, meeting: Meeting) -> None:
        company = self.rng.randrange(COMPANIES)
        guest = {"email": contact_email(company, self.rng.randrange(CONTACTS)), "responseStatus": "accepted"}
        if all(a["email"] != guest["email"] for a in meeting.payload["attendees"]):
            meeting.payload["attendees"].append(guest)
        self._publish(meeting)

    def _remove_attendee(self, meeting: Meeting) -> None:
        holders = set(meeting.holders) | {meeting.payload["organizer"]["email"]}
        guests = [a for a in meeting.payload["attendees"] if a["email"] not in holders]
        if len(guests) > 1:
            meeting.payload["attendees"].remove(self.rng.choice(guests))
        self._publish(meeting)

    def _reset(self, meeting: Meeting) -> None:
        """Google invalidates the holder's sync tokens: the next listing answers 410."""
        self.standin.calendar(self.rng.choice(meeting.holders)).expire_sync_tokens()

    # --- the directory -------------------------------------------------------------------------

    def directory_edit(self) -> DirectoryEdit:
        """One random directory edit, applied to the world; the caller writes it to Firestore."""
        tenant = self.rng.choice(self.world.tenants)
        kind = self.rng.choice(DIRECTORY_KINDS)
        edits: dict[str, Callable[[Tenant], DirectoryEdit | None]] = {
            "add_user": self._add_user,
            "move_user": self._move_user,
            "remove_user": self._remove_user,
            "add_account": self._add_account,
            "add_domain": self._add_domain,
            "remove_domain": self._remove_domain,
        }
        edit = edits[kind](tenant)
        return edit if edit is not None else self._add_account(tenant)

    def attendee_and_user(self) -> DirectoryEdit | None:
        """A new guest on a meeting and, right after, the same person added to the directory:
        the re-match and the push sync of that meeting race (the re-match may run before the
        sync has written the meeting, the sync may have looked the guest up before the write)."""
        live = self.world.live_meetings()
        if not live:
            return None
        meeting = self.rng.choice(live)
        tenant = self.world.tenant_of(meeting.holders[0].split("@")[0])
        edit = self._add_user(tenant)
        if edit is None or edit.new is None:
            return edit
        guest = {"email": edit.new["email"], "responseStatus": "accepted"}
        if all(a["email"] != guest["email"] for a in meeting.payload["attendees"]):
            meeting.payload["attendees"].append(guest)
        self._publish(meeting)
        return DirectoryEdit(
            edit.tenant_id, edit.collection, edit.document_id, edit.old, edit.new, "attendee_and_user"
        )

    def _user_edit(
        self, tenant: Tenant, user_id: str, new: dict[str, Any] | None, kind: str
    ) -> DirectoryEdit:
        old = copy.deepcopy(tenant.users.get(user_id))
        if new is None:
            tenant.users.pop(user_id, None)
        else:
            tenant.users[user_id] = copy.deepcopy(new)
        return DirectoryEdit(tenant.id, "users", user_id, old, new, kind)

    def _account_edit(self, tenant: Tenant, account_id: str, new: dict[str, Any], kind: str) -> DirectoryEdit:
        old = copy.deepcopy(tenant.accounts.get(account_id))
        tenant.accounts[account_id] = copy.deepcopy(new)
        return DirectoryEdit(tenant.id, "accounts", account_id, old, new, kind)

    def _add_user(self, tenant: Tenant) -> DirectoryEdit | None:
        companies = {company_domain(k): k for k in range(COMPANIES)}
        choices = sorted(
            (account_id, companies[d])
            for account_id, doc in tenant.accounts.items()
            for d in doc["domains"]
            if d in companies
        )
        if not choices:
            return None
        account_id, k = self.rng.choice(choices)
        free = [s for s in range(CONTACTS) if f"u-{k:02d}-{s}" not in tenant.users]
        if not free:
            return None
        slot = self.rng.choice(free)
        email = contact_email(k, slot)
        new = {"email": email, "name": _name(email), "accountId": account_id}
        return self._user_edit(tenant, f"u-{k:02d}-{slot}", new, "add_user")

    def _move_user(self, tenant: Tenant) -> DirectoryEdit | None:
        if not tenant.users:
            return None
        user_id = self.rng.choice(sorted(tenant.users))
        new = {**tenant.users[user_id], "accountId": self.rng.choice(sorted(tenant.accounts))}
        return self._user_edit(tenant, user_id, new, "move_user")

    def _remove_user(self, tenant: Tenant) -> DirectoryEdit | None:
        if not tenant.users:
            return None
        return self._user_edit(tenant, self.rng.choice(sorted(tenant.users)), None, "remove_user")

    def _add_account(self, tenant: Tenant) -> DirectoryEdit:
        taken = {d for doc in tenant.accounts.values() for d in doc["domains"]}
        candidates = [f"prospect{j}.io" for j in range(1, 13)] + [company_domain(k) for k in range(COMPANIES)]
        free = [d for d in candidates if d not in taken] or [f"new{len(tenant.accounts)}.io"]
        domain = self.rng.choice(free)
        account_id = f"acc-{domain.split('.')[0]}"
        new = {"name": domain.split(".")[0].title(), "domains": [domain]}
        return self._account_edit(tenant, account_id, new, "add_account")

    def _add_domain(self, tenant: Tenant) -> DirectoryEdit | None:
        taken = {d for doc in tenant.accounts.values() for d in doc["domains"]}
        free = [company_domain(k) for k in range(COMPANIES) if company_domain(k) not in taken]
        if not free:
            return None
        account_id = self.rng.choice(sorted(tenant.accounts))
        doc = tenant.accounts[account_id]
        new = {**doc, "domains": [*doc["domains"], self.rng.choice(free)]}
        return self._account_edit(tenant, account_id, new, "add_domain")

    def _remove_domain(self, tenant: Tenant) -> DirectoryEdit | None:
        several = sorted(a for a, doc in tenant.accounts.items() if len(doc["domains"]) > 1)
        if not several:
            return None
        account_id = self.rng.choice(several)
        doc = tenant.accounts[account_id]
        domains = list(doc["domains"])
        domains.remove(self.rng.choice(domains))
        return self._account_edit(tenant, account_id, {**doc, "domains": domains}, "remove_domain")
