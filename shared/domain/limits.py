"""How much calsync keeps of one event (docs/reference.md#size-limits). Pure.

An invitation can carry thousands of guests, very long names and titles, and be on many members'
calendars; what is stored about it (the meeting document, each interaction document) must stay
under the database's limit of 1 MiB a document. So a member's copy keeps:

- the title, cut to `MAX_TITLE_CHARS` characters;
- each guest's display name, cut to `MAX_NAME_CHARS` characters (also a name taken from the
  directory, so an interaction never carries a longer one);
- at most `MAX_GUESTS` guests: the member's own entry and the organizer's always, then the others
  in the invitation's order. Every guest kept keeps their email whole, so matching of the guests
  kept is exactly what it would be without the cap.

Why these values: real meeting titles are well under 200 characters and display names under 100,
so the caps only cut what is abuse or accident. With names at 200 characters and ordinary
addresses (under 60 bytes), 2,000 guests make a guest list of under 600 KB, stored once per
meeting, and an interaction whose `participants` and `attendees` together stay under 1 MiB in all
but contrived cases; those are caught by the store's document-size check and dropped as
`too_large` (docs/reference.md#size-limits).
"""

from __future__ import annotations

from collections.abc import Sequence

from shared.domain.models import EventAttendee

MAX_TITLE_CHARS = 1_000
MAX_NAME_CHARS = 200
MAX_GUESTS = 2_000


def capped_title(title: str) -> str:
    """The title as kept: at most MAX_TITLE_CHARS characters."""
    return title[:MAX_TITLE_CHARS]


def capped_name(name: str) -> str:
    """A display name as kept: at most MAX_NAME_CHARS characters."""
    return name[:MAX_NAME_CHARS]


def capped_guests(attendees: Sequence[EventAttendee], limit: int = MAX_GUESTS) -> tuple[EventAttendee, ...]:
    """At most `limit` guests, in their order: the member's own entries and the organizer's are
    always kept (when there are fewer than `limit` of them), then the first of the others."""
    if len(attendees) <= limit:
        return tuple(attendees)
    always = [n for n, a in enumerate(attendees) if a.is_self or a.is_organizer][:limit]
    room = limit - len(always)
    others = [n for n, a in enumerate(attendees) if not (a.is_self or a.is_organizer)][:room]
    kept = sorted(always + others)
    return tuple(attendees[n] for n in kept)
