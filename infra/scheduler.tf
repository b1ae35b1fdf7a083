# Cloud Scheduler calls schedule_sync with an OIDC token of its own service account, which is
# the only identity allowed to invoke schedule_sync (functions.tf, scheduler_invoker).

locals {
  schedule_sync_uri = google_cloudfunctions2_function.fn["schedule_sync"].service_config[0].uri
}

resource "google_cloud_scheduler_job" "sync" {
  name        = "calsync-schedule-sync"
  region      = var.region
  description = "Fan out one sync job per due member (calsync schedule_sync)."
  schedule    = var.sync_schedule
  time_zone   = var.sync_schedule_time_zone

  # Must cover a 100,000-member fan-out; 1,800 s is the maximum for HTTP targets and matches
  # the function's timeout.
  attempt_deadline = "1800s"

  # A failed fan-out is retried once after a minute; the next scheduled run follows anyway, and
  # re-publishing is harmless (one lease per member).
  retry_config {
    retry_count          = 1
    min_backoff_duration = "60s"
    max_backoff_duration = "300s"
  }

  http_target {
    http_method = "POST"
    uri         = local.schedule_sync_uri
    headers = {
      "Content-Type" = "application/json"
    }
    body = base64encode("{}")

    oidc_token {
      service_account_email = google_service_account.scheduler.email
      audience              = local.schedule_sync_uri
    }
  }

  depends_on = [
    google_project_service.enabled,
    google_cloud_run_v2_service_iam_member.scheduler_invoker,
  ]
}
