variable "project_id" {
  description = "Google Cloud project id that holds the whole pipeline (one environment per project)."
  type        = string
}

variable "region" {
  description = "Region of the functions, the scheduler job, the bundle bucket and the image repository."
  type        = string
  default     = "europe-west1"
}

variable "environment" {
  description = "Environment name (dev, staging, prod): labels every resource."
  type        = string

  validation {
    condition     = contains(["dev", "staging", "prod"], var.environment)
    error_message = "environment must be one of dev, staging, prod."
  }
}

variable "sync_schedule" {
  description = "Cron schedule (Cloud Scheduler syntax) on which schedule_sync fans out one job per due member."
  type        = string
  default     = "*/15 * * * *"
}

variable "sync_schedule_time_zone" {
  description = "Time zone the cron schedule is read in."
  type        = string
  default     = "Etc/UTC"
}

variable "firestore_location" {
  description = "Firestore database location (a multi-region such as eur3 / nam5, or a region). Fixed once created."
  type        = string
  default     = "eur3"
}

variable "oauth_client_id" {
  description = "Client id of the OAuth web client (APIs & Services > Credentials). Not a secret; its secret goes to Secret Manager."
  type        = string
}

variable "return_url" {
  description = "Optional CALSYNC_RETURN_URL: where oauth_callback sends the browser after a successful connect. Empty: calsync's own page."
  type        = string
  default     = ""
}

variable "bundle_path" {
  description = "Path of the functions bundle built by `python infra/bundle.py`. Empty: ../.bundle/calsync-functions.zip next to this module."
  type        = string
  default     = ""
}

variable "sync_budget_seconds" {
  description = "CALSYNC_SYNC_BUDGET_S: seconds a worker syncs before it saves its cursor and queues a continuation job. Must leave room under the worker's 540 s timeout."
  type        = number
  default     = 420

  validation {
    condition     = var.sync_budget_seconds >= 60 && var.sync_budget_seconds <= 480
    error_message = "sync_budget_seconds must be between 60 and 480 (the worker times out at 540 s)."
  }
}

variable "worker_max_instances" {
  description = "Upper bound on concurrent sync_worker instances (= concurrent member syncs). Bounds the Calendar API request rate; see README, Scaling."
  type        = number
  default     = 50
}

variable "sync_max_delivery_attempts" {
  description = "Deliveries of one sync job before Pub/Sub moves it to the dead-letter topic (5..100)."
  type        = number
  default     = 10

  validation {
    condition     = var.sync_max_delivery_attempts >= 5 && var.sync_max_delivery_attempts <= 100
    error_message = "Pub/Sub accepts 5..100 delivery attempts."
  }
}

variable "enable_directory_trigger" {
  description = "Deploy directory_changed (Firestore document-written triggers on users and accounts): re-match stored meetings when the CS platform writes the directory. Off: only calsync import / calsync rematch re-match."
  type        = bool
  default     = true
}

variable "channel_ttl_seconds" {
  description = "CALSYNC_CHANNEL_TTL_S: lifetime sync_worker asks for a new push channel (Google may grant less; the granted expiry counts). Renewal starts when a quarter of it is left, checked on every schedule run."
  type        = number
  default     = 604800

  validation {
    condition     = var.channel_ttl_seconds >= 3600 && var.channel_ttl_seconds <= 2592000
    error_message = "channel_ttl_seconds must be between 3600 (1 hour, several schedule runs before expiry) and 2592000 (30 days)."
  }
}

variable "backstop_interval_seconds" {
  description = "CALSYNC_BACKSTOP_INTERVAL_S: a member with an active push channel is still synced at least this often (Google drops a small share of notifications)."
  type        = number
  default     = 21600

  validation {
    condition     = var.backstop_interval_seconds >= 900 && var.backstop_interval_seconds <= 604800
    error_message = "backstop_interval_seconds must be between 900 (15 minutes) and 604800 (7 days)."
  }
}
