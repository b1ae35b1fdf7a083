output "oauth_redirect_uri" {
  description = "Register this as an authorised redirect URI of the OAuth web client."
  value       = local.function_urls["oauth_callback"]
}

output "function_urls" {
  description = "Public (cloudfunctions.net) URL of every function. Only the oauth_* ones and calendar_notification accept anonymous calls."
  value       = local.function_urls
}

output "notification_url" {
  description = "Where Google Calendar sends push notifications (calendar_notification); set on sync_worker as CALSYNC_NOTIFICATION_URL."
  value       = local.function_urls["calendar_notification"]
}

output "function_service_accounts" {
  description = "Runtime service account of each function."
  value       = { for k, sa in google_service_account.function : k => sa.email }
}

output "sync_topic" {
  description = "Pub/Sub topic of sync jobs (CALSYNC_SYNC_TOPIC)."
  value       = google_pubsub_topic.sync_jobs.name
}

output "dead_letter_subscription" {
  description = "Pull subscription holding sync jobs that failed every delivery attempt."
  value       = google_pubsub_subscription.sync_dead_letter_hold.name
}

output "bundle_object" {
  description = "gs:// path of the deployed functions bundle (named by its SHA-256)."
  value       = "gs://${google_storage_bucket.bundles.name}/${google_storage_bucket_object.bundle.name}"
}

output "scheduler_job" {
  description = "Cloud Scheduler job; `gcloud scheduler jobs run` it to sync now."
  value       = google_cloud_scheduler_job.sync.name
}
