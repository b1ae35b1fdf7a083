# ONE bundle for every function: functions/main.py (as main.py) + shared/ without the local
# tools (sandbox, CLI) + requirements.txt, zipped reproducibly by infra/bundle.py, which is the
# one definition of what ships. The object is named by the zip's SHA-256, so the same code is
# the same object (no redeploy), new code is a new object (a redeploy of every function), and an
# older bundle can be redeployed by name (rollback, README, Deploy).

locals {
  bundle_path   = var.bundle_path != "" ? var.bundle_path : "${path.module}/../.bundle/calsync-functions.zip"
  bundle_sha256 = filesha256(local.bundle_path)
  bundle_object = "functions/calsync-${local.bundle_sha256}.zip"
}

resource "google_storage_bucket" "bundles" {
  # checkov:skip=CKV_GCP_62: access logs of a bucket read only by Cloud Build add cost and no signal; Cloud Audit Logs record who changed it.
  name                        = "${var.project_id}-calsync-bundles"
  location                    = var.region
  storage_class               = "STANDARD"
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  # Bundles are immutable and content-named; keep a year of them for rollbacks.
  lifecycle_rule {
    condition {
      age = 365
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 1
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  depends_on = [google_project_service.enabled]
}

resource "google_storage_bucket_object" "bundle" {
  name         = local.bundle_object
  bucket       = google_storage_bucket.bundles.name
  source       = local.bundle_path
  content_type = "application/zip"
}

# Images built from the bundle go to a repository of our own, so the build service account can
# be given write access to exactly this repository instead of the project.
resource "google_artifact_registry_repository" "functions" {
  # checkov:skip=CKV_GCP_84: images hold only the open code and public libraries (no data, no secrets); Google-managed encryption suffices.
  repository_id = "calsync-functions"
  location      = var.region
  format        = "DOCKER"
  description   = "Images of the calsync functions, built by Cloud Functions from the bundle."

  cleanup_policies {
    id     = "keep-recent"
    action = "KEEP"
    most_recent_versions {
      keep_count = 20
    }
  }

  cleanup_policies {
    id     = "delete-old"
    action = "DELETE"
    condition {
      older_than = "2592000s" # 30 days; the 20 most recent are kept by the rule above
    }
  }

  depends_on = [google_project_service.enabled]
}
