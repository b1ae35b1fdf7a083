# Sync jobs: topic -> our own push subscription -> sync_worker, with retries (exponential
# backoff) and a dead-letter topic whose subscription keeps what could not be delivered.
#
# Why a push subscription of our own rather than the function's Eventarc trigger: Eventarc
# creates and owns the trigger's subscription, and Terraform cannot give it a dead-letter
# policy (a Pub/Sub-triggered function with RETRY_POLICY_RETRY retries until the message
# expires from that subscription, then drops the job without a trace). With our subscription,
# retries are ON (any non-2xx, i.e. an exception in the worker, is redelivered with backoff
# 10 s .. 600 s) and a job that fails `sync_max_delivery_attempts` times is parked in the
# dead-letter topic. The worker is deployed as an HTTP function: its
# @functions_framework.cloud_event decorator makes the framework turn the push body into the
# same CloudEvent an Eventarc trigger would deliver (the push path /projects/P/topics/T keeps
# the event's source naming the topic). Cloud Run counts Pub/Sub and Cloud Scheduler of the
# same project as internal traffic, so the worker and schedule_sync can be internal-only.

locals {
  sync_topic_name   = "calsync-sync-jobs" # the default of CALSYNC_SYNC_TOPIC (README.md#configuration)
  pubsub_agent      = "serviceAccount:service-${data.google_project.this.number}@gcp-sa-pubsub.iam.gserviceaccount.com"
  worker_uri        = google_cloudfunctions2_function.fn["sync_worker"].service_config[0].uri
  worker_push_route = "/projects/${var.project_id}/topics/${local.sync_topic_name}"
}

resource "google_pubsub_topic" "sync_jobs" {
  # checkov:skip=CKV_GCP_83: messages carry only tenant and member ids (never tokens or personal data); Google-managed encryption suffices.
  name                       = local.sync_topic_name
  message_retention_duration = "86400s" # a day: a later schedule_sync run re-queues anything older anyway

  depends_on = [google_project_service.enabled]
}

resource "google_pubsub_topic" "sync_dead_letter" {
  # checkov:skip=CKV_GCP_83: dead letters are copies of sync jobs (ids only); Google-managed encryption suffices.
  name = "calsync-sync-jobs-dead-letter"

  depends_on = [google_project_service.enabled]
}

# Keeps dead letters for the maximum 7 days so they can be inspected and replayed
# (README, "Read the logs"). Never expires even when nobody pulls.
resource "google_pubsub_subscription" "sync_dead_letter_hold" {
  name                       = "calsync-sync-jobs-dead-letter-hold"
  topic                      = google_pubsub_topic.sync_dead_letter.id
  ack_deadline_seconds       = 60
  message_retention_duration = "604800s"
  retain_acked_messages      = false

  expiration_policy {
    ttl = ""
  }
}

resource "google_pubsub_subscription" "sync_worker_push" {
  name  = "calsync-sync-worker-push"
  topic = google_pubsub_topic.sync_jobs.id

  # >= the worker's 540 s timeout (600 s is Pub/Sub's maximum): a job still being worked on is
  # never redelivered to a second instance just because it is slow.
  ack_deadline_seconds       = 600
  message_retention_duration = "86400s"

  expiration_policy {
    ttl = ""
  }

  retry_policy {
    minimum_backoff = "10s"
    maximum_backoff = "600s"
  }

  dead_letter_policy {
    dead_letter_topic     = google_pubsub_topic.sync_dead_letter.id
    max_delivery_attempts = var.sync_max_delivery_attempts
  }

  push_config {
    push_endpoint = "${local.worker_uri}${local.worker_push_route}"

    # Pub/Sub signs each push with an OIDC token of the push service account; Cloud Run
    # accepts it only because that account (and nobody else) may invoke the worker.
    oidc_token {
      service_account_email = google_service_account.pubsub_push.email
      audience              = local.worker_uri
    }
  }

  depends_on = [
    google_pubsub_topic_iam_member.dead_letter_publisher,
    google_cloud_run_v2_service_iam_member.worker_invoker,
  ]
}

# --- IAM the Pub/Sub service agent needs -------------------------------------------------

# Dead-lettering: the agent republishes to the dead-letter topic...
resource "google_pubsub_topic_iam_member" "dead_letter_publisher" {
  topic  = google_pubsub_topic.sync_dead_letter.id
  role   = "roles/pubsub.publisher"
  member = local.pubsub_agent
}

# ...and acknowledges the original on the source subscription.
resource "google_pubsub_subscription_iam_member" "worker_push_dead_letter_subscriber" {
  subscription = google_pubsub_subscription.sync_worker_push.id
  role         = "roles/pubsub.subscriber"
  member       = local.pubsub_agent
}

# Authenticated push: the agent mints OIDC tokens for the push account (only that account).
resource "google_service_account_iam_member" "pubsub_agent_mints_push_tokens" {
  service_account_id = google_service_account.pubsub_push.name
  role               = "roles/iam.serviceAccountTokenCreator"
  member             = local.pubsub_agent
}

# --- Who may publish sync jobs (topic-level, not project-level) ----------------------------

resource "google_pubsub_topic_iam_member" "sync_jobs_publisher" {
  for_each = toset([for k, f in local.functions : k if f.publishes_jobs])

  topic  = google_pubsub_topic.sync_jobs.id
  role   = "roles/pubsub.publisher"
  member = "serviceAccount:${google_service_account.function[each.key].email}"
}
