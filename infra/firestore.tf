# Firestore (Native mode) `(default)` database, the composite indexes the code's queries need,
# single-field exemptions for big or write-time-sequential fields, and the TTLs of OAuth states
# and push-channel lookups.
# Layout: README, "Data in Firestore".

resource "google_firestore_database" "default" {
  name                              = "(default)"
  location_id                       = var.firestore_location
  type                              = "FIRESTORE_NATIVE"
  point_in_time_recovery_enablement = "POINT_IN_TIME_RECOVERY_ENABLED"
  delete_protection_state           = "DELETE_PROTECTION_ENABLED"
  deletion_policy                   = "ABANDON" # `terraform destroy` never deletes customer data

  depends_on = [google_project_service.enabled]
}

# schedule_sync: collection group `members`, calendar.status == "connected" and
# calendar.nextSyncAt <= now (paged by nextSyncAt, then document name).
resource "google_firestore_index" "members_due" {
  database    = google_firestore_database.default.name
  collection  = "members"
  query_scope = "COLLECTION_GROUP"

  fields {
    field_path = "calendar.status"
    order      = "ASCENDING"
  }
  fields {
    field_path = "calendar.nextSyncAt"
    order      = "ASCENDING"
  }
  fields {
    field_path = "__name__"
    order      = "ASCENDING"
  }
}

# `calsync interactions --account A` and downstream readers: interactions of one account in
# time order (tenants/{t}/interactions, accountId == A order by startTime), both directions.
resource "google_firestore_index" "interactions_by_account" {
  for_each = toset(["ASCENDING", "DESCENDING"])

  database    = google_firestore_database.default.name
  collection  = "interactions"
  query_scope = "COLLECTION"

  fields {
    field_path = "accountId"
    order      = "ASCENDING"
  }
  fields {
    field_path = "startTime"
    order      = each.value
  }
  fields {
    field_path = "__name__"
    order      = each.value
  }
}

# Fields never queried that are big maps/arrays: indexing them would cost an index entry per
# nested value on every write (and can hit the 40,000-entries-per-document limit). An empty
# index_config removes every automatic single-field index on the field.
# meetings.eventRefs/holders/emails/domains keep their automatic array-contains indexes.
locals {
  unindexed_fields = {
    "meetings-copies"           = { collection = "meetings", field = "copies" }
    "meetings-interactions"     = { collection = "meetings", field = "interactions" }
    "meetings-unmatched"        = { collection = "meetings", field = "unmatched" }
    "interactions-participants" = { collection = "interactions", field = "participants" }
    "interactions-attendees"    = { collection = "interactions", field = "attendees" }
    # Write-time timestamps: values increase with every write, so their single-field index
    # is a sequential hotspot capped at ~500 writes/s per collection. Nothing queries them.
    # startTime stays indexed: its values are meeting times spread over the whole backfill
    # window (not write times), and the composite index above needs it.
    "interactions-createdAt" = { collection = "interactions", field = "createdAt" }
    "interactions-updatedAt" = { collection = "interactions", field = "updatedAt" }
  }
}

resource "google_firestore_field" "unindexed" {
  for_each = local.unindexed_fields

  database   = google_firestore_database.default.name
  collection = each.value.collection
  field      = each.value.field

  index_config {}
}

# OAuth states (oauthStates/{sha256(state)}) are single-use and valid 10 minutes; the TTL
# policy deletes expired ones (within ~24 h of expiresAt; the code checks expiry itself).
# expiresAt is also exempted from indexing: it is never queried and is sequential.
resource "google_firestore_field" "oauth_state_ttl" {
  database   = google_firestore_database.default.name
  collection = "oauthStates"
  field      = "expiresAt"

  ttl_config {}
  index_config {}
}

# Push channels: channels/{channelId} maps a channel id to its tenant and member, and is only
# ever read by id (calendar_notification), so it needs no composite index. An entry is deleted
# when its channel is stopped; one whose channel simply expired (Google has no renew call, an
# expired channel sends nothing) is left to this TTL policy on expireAt (deleted within ~24 h of
# it; a notification for a retired channel gets 404 anyway). expireAt is never queried and, as
# a write time plus the channel lifetime, sequential: exempt from indexing.
resource "google_firestore_field" "channel_ttl" {
  database   = google_firestore_database.default.name
  collection = "channels"
  field      = "expireAt"

  ttl_config {}
  index_config {}
}
