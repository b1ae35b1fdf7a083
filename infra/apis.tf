# Every API the pipeline touches. Never disabled on destroy: other things in the project may
# use them, and disabling an API destroys its resources.
locals {
  apis = [
    "artifactregistry.googleapis.com",     # images the function builds produce
    "calendar-json.googleapis.com",        # Google Calendar API, called with members' tokens
    "cloudbuild.googleapis.com",           # builds 2nd-gen functions from the bundle
    "cloudfunctions.googleapis.com",       # the functions themselves
    "cloudresourcemanager.googleapis.com", # project-level IAM bindings
    "cloudscheduler.googleapis.com",       # the fan-out schedule
    "eventarc.googleapis.com",             # directory_changed's Firestore triggers (optional)
    "firestore.googleapis.com",            # all data
    "iam.googleapis.com",                  # service accounts and custom roles
    "logging.googleapis.com",              # function logs
    "pubsub.googleapis.com",               # sync jobs and dead letters
    "run.googleapis.com",                  # 2nd-gen functions run as Cloud Run services
    "secretmanager.googleapis.com",        # OAuth client secret, link key, refresh tokens
    "storage.googleapis.com",              # the bundle bucket
  ]
}

resource "google_project_service" "enabled" {
  for_each = toset(local.apis)

  project            = var.project_id
  service            = each.value
  disable_on_destroy = false
}
