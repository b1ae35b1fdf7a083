"""The directory file of `calsync import` (README.md#command-line), validated as a whole before anything is
written, and the tenant settings (README.md#data-in-firestore).

    {"tenant": {"id", "name", "internalDomains", "settings"},
     "accounts": [{"id", "name", "domains"}],
     "users": [{"id", "email", "name", "accountId"}],
     "members": [{"id", "email", "name", "excludedAddresses"?}]}

`parse_directory` reports every problem of the file, one line per bad row, naming the row
(`users[3] (id "u-9"): ...`, indexes count from 0). A user may point at an account that is not
in the file but already exists in the tenant: the file lists those ids in
`DirectoryFile.outside_account_refs`, the caller looks them up and passes the ones that exist to
`with_account_references`. Pure: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from shared.domain import emails as email_rules
from shared.domain import ids
from shared.domain.exclusions import Exclusions, parse_exclusion_list
from shared.domain.models import Tenant, User
from shared.domain.settings import parse_domain_list, settings_from_document, settings_problems
from shared.errors import InvalidInput

_SECTIONS = ("file", "tenant", "accounts", "users", "members")
_TOP_FIELDS = frozenset({"tenant", "accounts", "users", "members"})
_TENANT_FIELDS = frozenset({"id", "name", "internalDomains", "settings"})
_ACCOUNT_FIELDS = frozenset({"id", "name", "domains"})
_USER_FIELDS = frozenset({"id", "email", "name", "accountId"})
_MEMBER_FIELDS = frozenset({"id", "email", "name", "excludedAddresses"})
_MEMBER_REQUIRED = ("id", "email", "name")


class DirectoryFileInvalid(InvalidInput):
    """The directory file has bad rows; `problems` holds one line per bad row."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        super().__init__(
            f"{count} invalid row{'s' if count != 1 else ''} in the directory file; nothing was imported"
        )


@dataclass(frozen=True, slots=True)
class AccountRow:
    id: str
    name: str
    domains: tuple[str, ...]  # normalised, unique: stored as `domainKeys`
    raw_domains: tuple[str, ...]  # as written in the file (trimmed): stored as `domains`


@dataclass(frozen=True, slots=True)
class MemberRow:
    id: str
    email: str  # normalised
    name: str
    # The member's own exclusions (README.md#exclusions); None: not in the file, left as stored.
    excluded_addresses: Exclusions | None = None


@dataclass(frozen=True, slots=True)
class _Problem:
    section: int
    index: int
    label: str  # `users[3] (id "u-9")`
    text: str  # what is wrong (without the label)


@dataclass(frozen=True)
class DirectoryFile:
    """A parsed directory file. Only valid rows are kept; `problems` lists the bad ones."""

    tenant: Tenant
    settings_document: Mapping[str, Any]  # the file's settings, normalised, camelCase
    accounts: tuple[AccountRow, ...] = ()
    users: tuple[User, ...] = ()
    members: tuple[MemberRow, ...] = ()
    problems: tuple[str, ...] = ()
    # (row index, user id, account id) of users pointing at accounts not in the file
    outside_account_refs: tuple[tuple[int, str, str], ...] = ()
    _sorted_problems: tuple[_Problem, ...] = field(default=(), repr=False)

    @property
    def is_valid(self) -> bool:
        return not self.problems

    @property
    def outside_account_ids(self) -> frozenset[str]:
        return frozenset(account_id for _, _, account_id in self.outside_account_refs)

    def with_account_references(self, existing_account_ids: Iterable[str]) -> DirectoryFile:
        """Resolve the users' references to accounts outside the file against those that exist
        in the tenant: each remaining one is a problem of its row."""
        existing = frozenset(existing_account_ids)
        found = list(self._sorted_problems)
        for index, user_id, account_id in self.outside_account_refs:
            if account_id not in existing:
                found.append(
                    _Problem(
                        _SECTIONS.index("users"),
                        index,
                        f"users[{index}] (id {json.dumps(user_id)})",
                        f"accountId {json.dumps(account_id)} is not an account in this file or the tenant",
                    )
                )
        return replace(self, outside_account_refs=(), problems=_lines(found), _sorted_problems=tuple(found))


def _lines(problems: Iterable[_Problem]) -> tuple[str, ...]:
    """One line per row, rows in file order; problems of the same row joined with "; "."""
    by_row: dict[tuple[int, int], tuple[str, list[str]]] = {}
    for problem in sorted(problems, key=lambda p: (p.section, p.index)):
        by_row.setdefault((problem.section, problem.index), (problem.label, []))[1].append(problem.text)
    return tuple(f"{label}: {'; '.join(texts)}" for label, texts in by_row.values())


# --- rows ---------------------------------------------------------------------------------------


def id_problem(value: object) -> str | None:
    """Why `value` cannot be an id of the file (see shared.domain.ids), or None."""
    if isinstance(value, str) and value and value != value.strip():
        return f"id {json.dumps(value)} has leading or trailing spaces"
    return ids.id_problem(value)


class _Rows:
    """Collects problems while reading the rows of one section."""

    def __init__(self, section: str) -> None:
        self.section = section
        self.rank = _SECTIONS.index(section)
        self.problems: list[_Problem] = []

    def label(self, index: int, row: object) -> str:
        row_id = row.get("id") if isinstance(row, Mapping) else None
        shown = f" (id {json.dumps(row_id)})" if isinstance(row_id, str) else ""
        return f"{self.section}[{index}]{shown}" if index >= 0 else f"{self.section}{shown}"

    def add(self, index: int, row: object, text: str) -> None:
        self.problems.append(_Problem(self.rank, index, self.label(index, row), text))


def _fields(
    rows: _Rows, index: int, row: Mapping[str, Any], allowed: frozenset[str], required: Iterable[str]
) -> None:
    for name in required:
        if name not in row:
            rows.add(index, row, f"missing field {json.dumps(name)}")
    for name in sorted(set(row) - allowed):
        rows.add(index, row, f"unknown field {json.dumps(name)}")


def _text(rows: _Rows, index: int, row: Mapping[str, Any], name: str) -> str | None:
    value = row.get(name)
    if name in row and not isinstance(value, str):
        rows.add(index, row, f"{name} must be a string, got {json.dumps(value)}")
        return None
    return value.strip() if isinstance(value, str) else None


def _email(rows: _Rows, index: int, row: Mapping[str, Any]) -> str | None:
    raw = _text(rows, index, row, "email")
    if raw is None:
        return None
    email = email_rules.normalize_email(raw)
    if not email_rules.is_valid_email(email):
        rows.add(index, row, f"malformed email {json.dumps(raw)}")
        return None
    return email


def _row_id(rows: _Rows, index: int, row: Mapping[str, Any], seen: dict[str, int]) -> str | None:
    if "id" not in row:
        return None
    value = row["id"]
    problem = id_problem(value)
    if problem:
        rows.add(index, row, problem)
        return None
    if value in seen:
        rows.add(index, row, f"duplicate id (also {rows.section}[{seen[value]}])")
        return None
    seen[value] = index
    return str(value)


def _section(data: Mapping[str, Any], name: str, file_rows: _Rows) -> list[Any]:
    value = data.get(name, [])
    if not isinstance(value, list):
        file_rows.add(-1, None, f"{name} must be a list, got {type(value).__name__}")
        return []
    return value


def parse_directory(text: str | bytes) -> DirectoryFile:
    """Parse and validate a whole directory file. Never raises for bad content: every problem is
    in `DirectoryFile.problems` (a file that is not JSON at all has one problem, `file: ...`)."""
    file_rows = _Rows("file")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        file_rows.add(-1, None, f"not valid JSON ({error})")
        return _finish(Tenant(id="", name=""), {}, (), (), (), (), file_rows)
    if not isinstance(data, dict):
        file_rows.add(-1, None, "the file must hold a JSON object")
        return _finish(Tenant(id="", name=""), {}, (), (), (), (), file_rows)
    for name in sorted(set(data) - _TOP_FIELDS):
        file_rows.add(-1, None, f"unknown field {json.dumps(name)}")

    tenant, settings_document, tenant_rows = _tenant(data.get("tenant"), "tenant" in data)
    accounts, account_rows = _accounts(_section(data, "accounts", file_rows))
    account_ids = {a.id for a in accounts}
    raw_users = _section(data, "users", file_rows)
    users, outside, user_rows = _users(raw_users, account_ids)
    members, member_rows = _members(_section(data, "members", file_rows))
    return _finish(
        tenant,
        settings_document,
        tuple(accounts),
        tuple(users),
        tuple(members),
        tuple(outside),
        file_rows,
        tenant_rows,
        account_rows,
        user_rows,
        member_rows,
    )


def _finish(
    tenant: Tenant,
    settings_document: Mapping[str, Any],
    accounts: tuple[AccountRow, ...],
    users: tuple[User, ...],
    members: tuple[MemberRow, ...],
    outside: tuple[tuple[int, str, str], ...],
    *sections: _Rows,
) -> DirectoryFile:
    problems = [p for rows in sections for p in rows.problems]
    return DirectoryFile(
        tenant=tenant,
        settings_document=settings_document,
        accounts=accounts,
        users=users,
        members=members,
        problems=_lines(problems),
        outside_account_refs=outside,
        _sorted_problems=tuple(problems),
    )


def _tenant(raw: Any, present: bool) -> tuple[Tenant, dict[str, Any], _Rows]:
    rows = _Rows("tenant")
    if not present:
        rows.add(-1, None, "missing (the file must name its tenant)")
        return Tenant(id="", name=""), {}, rows
    if not isinstance(raw, dict):
        rows.add(-1, None, "must be an object")
        return Tenant(id="", name=""), {}, rows
    _fields(rows, -1, raw, _TENANT_FIELDS, ("id", "name"))
    tenant_id = ""
    if "id" in raw:
        problem = id_problem(raw["id"])
        if problem:
            rows.add(-1, raw, problem)
        else:
            tenant_id = raw["id"]
    name = _text(rows, -1, raw, "name") or ""
    internal: tuple[str, ...] = ()
    if "internalDomains" in raw:
        internal, bad = parse_domain_list(raw["internalDomains"])
        if bad:
            rows.add(-1, raw, f"internalDomains {bad}")
    settings_document: dict[str, Any] = {}
    if "settings" in raw:
        if isinstance(raw["settings"], dict):
            problems, settings_document = settings_problems(raw["settings"])
            for problem in problems:
                rows.add(-1, raw, problem)
        else:
            rows.add(-1, raw, "settings must be an object")
    tenant = Tenant(
        id=tenant_id,
        name=name,
        internal_domains=internal,
        settings=settings_from_document(settings_document),
    )
    return tenant, settings_document, rows


def _accounts(raw: list[Any]) -> tuple[list[AccountRow], _Rows]:
    rows = _Rows("accounts")
    seen: dict[str, int] = {}
    found: list[AccountRow] = []
    for index, row in enumerate(raw):
        if not isinstance(row, dict):
            rows.add(index, row, "must be an object")
            continue
        before = len(rows.problems)
        _fields(rows, index, row, _ACCOUNT_FIELDS, _ACCOUNT_FIELDS)
        account_id = _row_id(rows, index, row, seen)
        name = _text(rows, index, row, "name")
        domains: tuple[str, ...] = ()
        raw_domains: tuple[str, ...] = ()
        if "domains" in row:
            domains, bad = parse_domain_list(row["domains"])
            if bad:
                rows.add(index, row, f"domains {bad}")
            else:
                raw_domains = tuple(d.strip() for d in row["domains"])
        if len(rows.problems) == before and account_id is not None and name is not None:
            found.append(AccountRow(account_id, name, domains, raw_domains))
    return found, rows


def _users(raw: list[Any], account_ids: set[str]) -> tuple[list[User], list[tuple[int, str, str]], _Rows]:
    rows = _Rows("users")
    seen: dict[str, int] = {}
    found: list[User] = []
    outside: list[tuple[int, str, str]] = []
    for index, row in enumerate(raw):
        if not isinstance(row, dict):
            rows.add(index, row, "must be an object")
            continue
        before = len(rows.problems)
        _fields(rows, index, row, _USER_FIELDS, _USER_FIELDS)
        user_id = _row_id(rows, index, row, seen)
        email = _email(rows, index, row)
        name = _text(rows, index, row, "name")
        account_id = _text(rows, index, row, "accountId")
        if account_id is not None and id_problem(account_id):
            rows.add(index, row, f"accountId {json.dumps(row.get('accountId'))} is not a usable account id")
            account_id = None
        if (
            len(rows.problems) != before
            or user_id is None
            or email is None
            or name is None
            or account_id is None
        ):
            continue
        if account_id not in account_ids:
            outside.append((index, user_id, account_id))
        found.append(User(id=user_id, email=email, name=name, account_id=account_id))
    return found, outside, rows


def _members(raw: list[Any]) -> tuple[list[MemberRow], _Rows]:
    rows = _Rows("members")
    seen: dict[str, int] = {}
    emails: dict[str, int] = {}
    found: list[MemberRow] = []
    for index, row in enumerate(raw):
        if not isinstance(row, dict):
            rows.add(index, row, "must be an object")
            continue
        before = len(rows.problems)
        _fields(rows, index, row, _MEMBER_FIELDS, _MEMBER_REQUIRED)
        member_id = _row_id(rows, index, row, seen)
        exclusions: Exclusions | None = None
        if "excludedAddresses" in row:
            exclusions, bad = parse_exclusion_list(row["excludedAddresses"])
            for text in bad:
                rows.add(index, row, f"excludedAddresses {text}")
        email = _email(rows, index, row)
        name = _text(rows, index, row, "name")
        if email is not None:
            if email in emails:
                rows.add(
                    index, row, f"duplicate member email {json.dumps(email)} (also members[{emails[email]}])"
                )
            else:
                emails[email] = index
        if len(rows.problems) == before and member_id is not None and email is not None and name is not None:
            found.append(MemberRow(member_id, email, name, exclusions))
    return found, rows
