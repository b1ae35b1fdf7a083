"""Firestore adapters: the only code that talks to Firestore (layout in the README, "Data in
Firestore").

| module | what it holds |
|---|---|
| `members.py` | `FirestoreMemberStore`: members' `calendar` state, the sync lease, due members |
| `directory.py` | `FirestoreDirectoryStore`: tenant, accounts, users, member addresses; imports |
| `meetings.py` | `FirestoreMeetingStore`: meetings and interactions, atomic plans, index queries |
| `report.py` | `FirestoreReportStore`: the operator report's bounded reads (aggregation counts) |
| `channels.py` | `FirestoreChannelStore`: push channel id -> member (`channels`) |
| `oauth_states.py` | `FirestoreOAuthStateStore`: pending OAuth consents (`oauthStates`) |
| `document_events.py` | Eventarc document-written events on users and accounts -> `DirectoryChange` |
| `codecs.py` | documents <-> domain objects, one `<noun>_from_document` / `_to_document` pair each |
| `meeting_codec.py` | the meeting document <-> `MeetingRecord` (the guest list stored once) |
| `document_size.py` | Firestore's document-size count (the 1 MiB limit) |
| `fast_path.py` | every use of SDK internals: raw query results and raw protobuf commits |
| `base.py` | collection names, query limits, error translation |

SDK errors are translated in the stores: precondition failures of a plan -> `WriteConflict`;
a document refused as too large -> `DocumentTooLarge`;
unavailability, deadlines, internal errors, aborted transactions, quota -> `TransientError`;
a missing tenant or member -> `NotFound`.
"""

from shared.adapters.firestore.channels import FirestoreChannelStore
from shared.adapters.firestore.directory import FirestoreDirectoryStore
from shared.adapters.firestore.meetings import FirestoreMeetingStore
from shared.adapters.firestore.members import FirestoreMemberStore
from shared.adapters.firestore.oauth_states import FirestoreOAuthStateStore
from shared.adapters.firestore.report import FirestoreReportStore

__all__ = [
    "FirestoreChannelStore",
    "FirestoreDirectoryStore",
    "FirestoreMeetingStore",
    "FirestoreMemberStore",
    "FirestoreOAuthStateStore",
    "FirestoreReportStore",
]
