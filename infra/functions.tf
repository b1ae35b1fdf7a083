# The six functions (2nd gen, Python 3.11) from ONE bundle, each with its own service account.
#
# Sizing, per function (memory / CPU / timeout / max instances / concurrency):
# - Concurrency is 1 everywhere. 2nd gen allows more only with >= 1 vCPU; the OAuth endpoints
#   see a handful of requests a day, calendar_notification does a few Firestore calls and one
#   publish per request, the worker holds one member's lease and a page of up to
#   2,500 events per request and uses httplib2 (one connection per thread), and schedule_sync
#   must never run twice at once (see below). Scaling out is by instances, bounded below.
# - cpu = null: the platform derives it from memory (256M -> 0.167 vCPU, 512M -> 0.333 vCPU);
#   these I/O-bound functions wait on Google APIs, not on the CPU.
locals {
  functions = {
    # Browser -> signed connect link -> redirect to Google's consent page. One Firestore write
    # (the OAuth state). 256 MiB: the libraries plus one request. 30 s: the work is ~100 ms and
    # a browser gives up long before. 10 instances: a whole team connecting at once after an
    # announcement is still < 10 req/s. No OAuth client secret: the consent URL carries the
    # client id only (shared/config.py OAUTH_CONNECT).
    oauth_connect = {
      name           = "calsync-oauth-connect"
      entry_point    = "oauth_connect"
      memory         = "256M"
      cpu            = null # 0.167 vCPU
      timeout        = 30
      max_instances  = 10
      concurrency    = 1
      public         = true
      publishes_jobs = false
      datastore_role = "roles/datastore.user" # writes the OAuth state
      secret_env = {
        CALSYNC_LINK_SIGNING_KEY = "link_signing_key"
      }
      extra_env = {}
    }

    # Google redirects here: code exchange at Google, Secret Manager create/add/destroy,
    # Firestore update, one publish. Several round trips to Google: 60 s. Same volume as connect.
    oauth_callback = {
      name           = "calsync-oauth-callback"
      entry_point    = "oauth_callback"
      memory         = "256M"
      cpu            = null # 0.167 vCPU
      timeout        = 60
      max_instances  = 10
      concurrency    = 1
      public         = true
      publishes_jobs = true                   # queues the member's first sync
      datastore_role = "roles/datastore.user" # consumes the state, marks the member connected
      secret_env = {
        CALSYNC_OAUTH_CLIENT_SECRET = "oauth_client_secret"
        CALSYNC_LINK_SIGNING_KEY    = "link_signing_key"
      }
      extra_env = {}
    }

    # Confirmation page (GET) and disconnect (POST): stop the member's push channel, revoke at
    # Google, destroy the secret. Rare: 5 instances. The OAuth client secret is injected because
    # stopping a push channel (Calendar channels.stop) needs an ACCESS token, which only a
    # refresh with the client id and secret yields; revoking alone would need neither. This
    # public function can read any member's refresh token (secrets.tf, token_remover), so with
    # the client secret it could read a calendar: what still bounds it is that it acts only for a
    # valid disconnect link and cannot add token versions (README.md#who-can-do-what-least-privilege).
    # No channel token key: it stops a channel by id and resource id, it never makes or checks a
    # channel token.
    oauth_disconnect = {
      name           = "calsync-oauth-disconnect"
      entry_point    = "oauth_disconnect"
      memory         = "256M"
      cpu            = null # 0.167 vCPU
      timeout        = 60
      max_instances  = 5
      concurrency    = 1
      public         = true
      publishes_jobs = false
      datastore_role = "roles/datastore.user" # marks the member disconnected
      secret_env = {
        CALSYNC_LINK_SIGNING_KEY    = "link_signing_key"
        CALSYNC_OAUTH_CLIENT_SECRET = "oauth_client_secret" # refresh -> access token -> channels.stop
      }
      extra_env = {}
    }

    # Cloud Scheduler -> page through due members of every tenant -> one message each. Must
    # handle 100,000 members in one invocation: ~100k Firestore reads and publishes, CPU-bound
    # on serialisation, hence a full vCPU and 512 MiB for the publisher's batches. Timeout
    # 1,800 s = Cloud Scheduler's longest attempt deadline for HTTP targets. ONE instance: two
    # overlapping fan-outs would only publish duplicate jobs (harmless, but wasted).
    schedule_sync = {
      name           = "calsync-schedule-sync"
      entry_point    = "schedule_sync"
      memory         = "512M"
      cpu            = "1"
      timeout        = 1800
      max_instances  = 1
      concurrency    = 1
      public         = false
      publishes_jobs = true
      datastore_role = "roles/datastore.user" # reads due members; writes one field, the hold on calendar.nextSyncAt
      secret_env     = {}
      extra_env      = {}
    }

    # Pub/Sub push -> sync one member. 512 MiB: a page of up to 2,500 events plus the stored
    # meetings it touches. Timeout 540 s, the event-function limit and under the push
    # subscription's 600 s ack deadline; the worker stops after CALSYNC_SYNC_BUDGET_S (420 s),
    # saves its cursor and queues a continuation. Max instances bound concurrent syncs and so
    # the Calendar API request rate (README, Scaling).
    sync_worker = {
      name           = "calsync-sync-worker"
      entry_point    = "sync_worker"
      memory         = "512M"
      cpu            = null # 0.333 vCPU
      timeout        = 540
      max_instances  = var.worker_max_instances
      concurrency    = 1
      public         = false
      publishes_jobs = true                   # continuation jobs
      datastore_role = "roles/datastore.user" # meetings, interactions, sync state
      secret_env = {
        CALSYNC_OAUTH_CLIENT_SECRET = "oauth_client_secret" # refreshes members' access tokens
        CALSYNC_CHANNEL_TOKEN_KEY   = "channel_token_key"   # signs the token of each channel it opens
      }
      # Push channels: the lifetime asked for, and how often a member with one is synced anyway.
      extra_env = {
        CALSYNC_SYNC_BUDGET_S       = tostring(var.sync_budget_seconds)
        CALSYNC_CHANNEL_TTL_S       = tostring(var.channel_ttl_seconds)
        CALSYNC_BACKSTOP_INTERVAL_S = tostring(var.backstop_interval_seconds)
      } # + CALSYNC_NOTIFICATION_URL (url_env below)
    }

    # Google Calendar push notifications (POST, headers only, no body) -> look up the channel
    # (channels/{channelId}), check its HMAC token in constant time, coalesce, queue one sync job
    # for the member. Public: Google's push servers call it without credentials, so the channel
    # token is its authentication. It never reads a calendar, so it holds no OAuth client secret
    # and no token role; only the channel token key. Each request is a few Firestore calls and
    # at most one publish (~100-300 ms): 256 MiB and 30 s, like oauth_connect. 20 instances:
    # ~4 req/s each at concurrency 1, so ~80 notifications/s. 100,000 members with ~100 calendar
    # changes a week each send ~17/s on average, so this covers peaks of ~4x that; beyond, Cloud
    # Run answers 429, Google retries, and what is still lost is caught by the backstop sync
    # (CALSYNC_BACKSTOP_INTERVAL_S). Raise it with the member count.
    calendar_notification = {
      name           = "calsync-calendar-notification"
      entry_point    = "calendar_notification"
      memory         = "256M"
      cpu            = null # 0.167 vCPU
      timeout        = 30
      max_instances  = 20
      concurrency    = 1
      public         = true
      publishes_jobs = true                   # the member's sync job
      datastore_role = "roles/datastore.user" # reads channels/{id} and the member, writes the member's coalescing flags
      secret_env = {
        CALSYNC_CHANNEL_TOKEN_KEY = "channel_token_key" # checks the channel token
      }
      extra_env = {}
    }
  }

  # 2nd-gen functions also answer on https://REGION-PROJECT.cloudfunctions.net/NAME. That URL
  # is known before anything is deployed, so functions can name each other without a cycle.
  function_urls = {
    for key, fn in local.functions : key => "https://${var.region}-${var.project_id}.cloudfunctions.net/${fn.name}"
  }

  # Environment naming another function's URL, per function. Kept out of the map above, from
  # which the URLs are derived. The worker opens the push channels (events.watch), so it is
  # the one that tells Google where to send notifications.
  url_env = {
    sync_worker = {
      CALSYNC_NOTIFICATION_URL = local.function_urls["calendar_notification"]
    }
  }

  common_env = merge(
    {
      GOOGLE_CLOUD_PROJECT       = var.project_id
      CALSYNC_OAUTH_CLIENT_ID    = var.oauth_client_id
      CALSYNC_OAUTH_REDIRECT_URI = local.function_urls["oauth_callback"]
      CALSYNC_CONNECT_URL        = local.function_urls["oauth_connect"]
      CALSYNC_DISCONNECT_URL     = local.function_urls["oauth_disconnect"]
      CALSYNC_SYNC_TOPIC         = local.sync_topic_name
      LOG_EXECUTION_ID           = "true" # tags each log line with the request's execution id
    },
    var.return_url != "" ? { CALSYNC_RETURN_URL = var.return_url } : {},
  )
}

# --- Identities ------------------------------------------------------------------------------

# One service account per function (the map above), nothing shared.
resource "google_service_account" "function" {
  for_each = local.functions

  account_id   = each.value.name
  display_name = "calsync ${each.key}"
  description  = "Runtime identity of the ${each.key} function only."

  depends_on = [google_project_service.enabled]
}

# Firestore documents and nothing else in the project: read and write (datastore.user) for the
# functions that write, read only (datastore.viewer) for schedule_sync, which only pages
# through due members.
resource "google_project_iam_member" "function_datastore" {
  for_each = local.functions

  project = var.project_id
  role    = each.value.datastore_role
  member  = "serviceAccount:${google_service_account.function[each.key].email}"
}

moved {
  from = google_project_iam_member.function_datastore_user
  to   = google_project_iam_member.function_datastore
}

# Builds the functions' images from the bundle (instead of a default, broad build account).
resource "google_service_account" "build" {
  account_id   = "calsync-fn-build"
  display_name = "calsync function builds"

  depends_on = [google_project_service.enabled]
}

resource "google_project_iam_member" "build_log_writer" {
  project = var.project_id
  role    = "roles/logging.logWriter"
  member  = "serviceAccount:${google_service_account.build.email}"
}

resource "google_artifact_registry_repository_iam_member" "build_pushes_images" {
  location   = google_artifact_registry_repository.functions.location
  repository = google_artifact_registry_repository.functions.name
  role       = "roles/artifactregistry.writer"
  member     = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_bundle" {
  bucket = google_storage_bucket.bundles.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# Identity Cloud Scheduler signs its OIDC token with; the only caller of schedule_sync.
resource "google_service_account" "scheduler" {
  account_id   = "calsync-scheduler"
  display_name = "calsync Cloud Scheduler invoker"

  depends_on = [google_project_service.enabled]
}

# Identity Pub/Sub signs pushes to the worker with; the only caller of sync_worker.
resource "google_service_account" "pubsub_push" {
  account_id   = "calsync-pubsub-push"
  display_name = "calsync Pub/Sub push invoker"

  depends_on = [google_project_service.enabled]
}

# --- The functions ---------------------------------------------------------------------------

resource "google_cloudfunctions2_function" "fn" {
  for_each = local.functions

  name        = each.value.name
  location    = var.region
  description = "calsync ${each.key} (bundle ${substr(local.bundle_sha256, 0, 12)})"

  build_config {
    runtime           = "python311"
    entry_point       = each.value.entry_point
    service_account   = google_service_account.build.id
    docker_repository = google_artifact_registry_repository.functions.id

    source {
      storage_source {
        bucket = google_storage_bucket.bundles.name
        object = google_storage_bucket_object.bundle.name
      }
    }
  }

  service_config {
    service_account_email            = google_service_account.function[each.key].email
    available_memory                 = each.value.memory
    available_cpu                    = each.value.cpu
    timeout_seconds                  = each.value.timeout
    min_instance_count               = 0
    max_instance_count               = each.value.max_instances
    max_instance_request_concurrency = each.value.concurrency
    all_traffic_on_latest_revision   = true
    # Browsers reach the OAuth endpoints, and Google's push servers calendar_notification, from
    # anywhere. schedule_sync and sync_worker are called only by Cloud Scheduler and Pub/Sub,
    # which count as internal traffic.
    ingress_settings      = each.value.public ? "ALLOW_ALL" : "ALLOW_INTERNAL_ONLY"
    environment_variables = merge(local.common_env, each.value.extra_env, lookup(local.url_env, each.key, {}))

    # Injected by the platform at instance start; the code only reads the environment.
    dynamic "secret_environment_variables" {
      for_each = each.value.secret_env
      content {
        key        = secret_environment_variables.key
        project_id = var.project_id
        secret     = google_secret_manager_secret.config[secret_environment_variables.value].secret_id
        version    = "latest"
      }
    }
  }

  depends_on = [
    google_secret_manager_secret_iam_member.config_accessor,
    google_artifact_registry_repository_iam_member.build_pushes_images,
    google_storage_bucket_iam_member.build_reads_bundle,
    google_project_iam_member.build_log_writer,
  ]
}

# --- Who may invoke what ---------------------------------------------------------------------

# Only the three OAuth endpoints and calendar_notification are public; each authenticates the
# request itself: a signed link or state (OAuth), the channel's HMAC token (notifications).
resource "google_cloud_run_v2_service_iam_member" "public_invoker" {
  # checkov:skip=CKV_GCP_102: the OAuth endpoints are opened from members' browsers and Google's redirect, calendar_notification by Google's push servers without credentials; each checks an HMAC-signed link, a single-use state or the channel's HMAC token itself (docs/reference.md#connecting-a-calendar).
  for_each = toset([for k, f in local.functions : k if f.public])

  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn[each.key].name
  role     = "roles/run.invoker"
  member   = "allUsers"
}

resource "google_cloud_run_v2_service_iam_member" "scheduler_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn["schedule_sync"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.scheduler.email}"
}

resource "google_cloud_run_v2_service_iam_member" "worker_invoker" {
  project  = var.project_id
  location = var.region
  name     = google_cloudfunctions2_function.fn["sync_worker"].name
  role     = "roles/run.invoker"
  member   = "serviceAccount:${google_service_account.pubsub_push.email}"
}
