# directory_changed: re-match stored meetings when a user or an account document is written
# (Firestore document-written events through Eventarc, protobuf DocumentEventData; entry point
# `directory_changed` in functions/main.py). On by default; enable_directory_trigger = false
# leaves re-matching to `calsync import` and `calsync rematch`.
#
# One Eventarc Firestore trigger takes ONE document path pattern, and a pattern that covers
# both users and accounts (tenants/{t}/{collection}/{doc}) would also fire on every
# interaction, meeting and member write. So the entry point is deployed twice, one function per
# collection, each with its own service account. Retries are on: an exception (Firestore
# unavailable, write contention) redelivers the event (for up to 24 h), and the re-match is
# idempotent and reads the directory as it is now, so redelivered or reordered events converge.
# A malformed event, or one naming an unknown tenant, is acknowledged with an error log. The
# function's only grant is roles/datastore.user: it reads users, accounts and meetings, fixes a
# document's emailKey/domainKeys, and writes meetings and interactions.

locals {
  directory_triggers = var.enable_directory_trigger ? {
    users = {
      name     = "calsync-directory-users"
      document = "tenants/{tenant}/users/{user}"
    }
    accounts = {
      name     = "calsync-directory-accounts"
      document = "tenants/{tenant}/accounts/{account}"
    }
  } : {}
}

resource "google_service_account" "directory" {
  for_each = local.directory_triggers

  account_id   = each.value.name
  display_name = "calsync directory_changed (${each.key})"
  description  = "Runtime identity of the directory_changed function for ${each.key}."

  depends_on = [google_project_service.enabled]
}

# Identity Eventarc delivers the Firestore events with.
resource "google_service_account" "directory_trigger" {
  count = var.enable_directory_trigger ? 1 : 0

  account_id   = "calsync-directory-trigger"
  display_name = "calsync Eventarc trigger (directory_changed)"
}

resource "google_project_iam_member" "directory_datastore_user" {
  for_each = local.directory_triggers

  project = var.project_id
  role    = "roles/datastore.user"
  member  = "serviceAccount:${google_service_account.directory[each.key].email}"
}

resource "google_project_iam_member" "directory_trigger_event_receiver" {
  count = var.enable_directory_trigger ? 1 : 0

  project = var.project_id
  role    = "roles/eventarc.eventReceiver"
  member  = "serviceAccount:${google_service_account.directory_trigger[0].email}"
}

# The trigger's Pub/Sub transport mints OIDC tokens for the trigger account.
resource "google_service_account_iam_member" "pubsub_agent_mints_directory_tokens" {
  count = var.enable_directory_trigger ? 1 : 0

  service_account_id = google_service_account.directory_trigger[0].name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

resource "google_cloudfunctions2_function" "directory_changed" {
  for_each = local.directory_triggers

  name        = each.value.name
  location    = var.region
  description = "calsync directory_changed on ${each.key} (bundle ${substr(local.bundle_sha256, 0, 12)})"

  build_config {
    runtime           = "python311"
    entry_point       = "directory_changed"
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.bundles.name
        object = google_storage_bucket_object.bundle.name
      }
    }
  }

  # 512 MiB / 540 s: a changed account domain can re-match many stored meetings. 5 instances:
  # a bulk import fires one event per document; the backlog drains at a bounded rate instead
  # of competing with the sync workers for Firestore write capacity. Concurrency 1 as above.
  service_config {
    service_account_email            = google_service_account.directory[each.key].email
    available_memory                 = "512M"
    timeout_seconds                  = 540
    min_instance_count               = 0
    max_instance_count               = 5
    max_instance_request_concurrency = 1
    all_traffic_on_latest_revision   = true
    ingress_settings                 = "ALLOW_INTERNAL_ONLY"
    environment_variables            = local.common_env
  }

  event_trigger {
    trigger_region        = var.firestore_location # Firestore triggers live where the database is
    event_type            = "google.cloud.firestore.document.v1.written"
    retry_policy          = "RETRY_POLICY_RETRY"
    service_account_email = google_service_account.directory_trigger[0].email

    event_filters {
      attribute = "database"
      value     = google_firestore_database.default.name
    }

    event_filters {
      attribute = "document"
      value     = each.value.document
      operator  = "match-path-pattern"
    }
  }

  depends_on = [
    google_project_iam_member.directory_trigger_event_receiver,
    google_artifact_registry_repository_iam_member.build_pushes_images,
    google_storage_bucket_iam_member.build_reads_bundle,
  ]
}

resource "google_cloud_run_v2_service_iam_member" "directory_invoker" {
  for_each = local.directory_triggers

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.directory_changed[each.key].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.directory_trigger[0].email}"
}
