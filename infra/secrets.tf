# Secret Manager.
#
# 1. Configuration secrets, created here EMPTY: their values are added out of band with
#    `gcloud secrets versions add` (README, Deploy) so they never sit in Terraform state. The
#    platform injects them as environment variables (version "latest", read at instance start).
# 2. Per-member refresh-token secrets (`calsync-rt-<hash>`), created and destroyed by the code
#    at run time. Nobody gets a role on "all secrets": each function gets the narrowest role
#    on the `calsync-rt-` name prefix through an IAM condition.

resource "google_secret_manager_secret" "config" {
  for_each = {
    oauth_client_secret = "calsync-oauth-client-secret" # CALSYNC_OAUTH_CLIENT_SECRET
    link_signing_key    = "calsync-link-signing-key"    # CALSYNC_LINK_SIGNING_KEY
    channel_token_key   = "calsync-channel-token-key"   # CALSYNC_CHANNEL_TOKEN_KEY (push channel tokens)
  }

  secret_id = each.value

  replication {
    auto {}
  }

  depends_on = [google_project_service.enabled]
}

# Each configuration secret is readable only by the functions that are given it (functions.tf).
resource "google_secret_manager_secret_iam_member" "config_accessor" {
  for_each = {
    for pair in flatten([
      for fn_key, fn in local.functions : [
        for env_name, secret_key in fn.secret_env : { fn = fn_key, secret = secret_key }
      ]
    ]) : "${pair.fn}.${pair.secret}" => pair
  }

  secret_id = google_secret_manager_secret.config[each.value.secret].id
  role      = "roles/secretmanager.secretAccessor"
  member    = "serviceAccount:${google_service_account.function[each.value.fn].email}"
}

locals {
  # IAM conditions on Secret Manager see resource.name with the project NUMBER.
  token_secret_prefix = "projects/${data.google_project.this.number}/secrets/calsync-rt-"
  token_condition     = "resource.name.startsWith(\"${local.token_secret_prefix}\")"
}

# --- Custom roles: exactly the permissions each use case calls -----------------------------

# Permissions below are exactly the calls shared/adapters/secrets.py (TokenVault) makes.

# sync_worker (TokenVault.read): access `latest`, and list versions to fall back to the newest
# enabled one when `latest` was destroyed. Nothing that writes.
resource "google_project_iam_custom_role" "token_reader" {
  role_id     = "calsyncTokenReader"
  title       = "calsync refresh-token reader"
  description = "Read calsync-rt-* token versions (granted with a name-prefix condition)."
  permissions = [
    "secretmanager.versions.access",
    "secretmanager.versions.list",
  ]
}

# oauth_callback (TokenVault.store): add the refresh token as a new version of the member's
# secret, list and destroy the older versions. Cannot read a token.
resource "google_project_iam_custom_role" "token_writer" {
  role_id     = "calsyncTokenWriter"
  title       = "calsync refresh-token writer"
  description = "Add versions to calsync-rt-* secrets and destroy older ones (granted with a name-prefix condition)."
  permissions = [
    "secretmanager.versions.add",
    "secretmanager.versions.destroy",
    "secretmanager.versions.list",
  ]
}

# secrets.create is checked on the PARENT (the project), not on the secret to be created, so it
# cannot be granted on a secret-name prefix. It gets a role of its own holding nothing else,
# bound on the project with a condition that matches the project itself (or a calsync-rt-
# name, should the check ever be evaluated on the new secret): it matches no existing secret
# or version, so it grants no access to any secret's data. The worst a caller can do with it is
# create an empty secret; it can add data only to calsync-rt-* secrets (token_writer above).
# (The alternative, roles/secretmanager.admin under the same condition, would work the same way
# but carry IAM-policy and version-access permissions the callback never uses.)
resource "google_project_iam_custom_role" "token_creator" {
  role_id     = "calsyncTokenCreator"
  title       = "calsync refresh-token secret creator"
  description = "Create secrets (only); data can be added only to calsync-rt-* secrets."
  permissions = ["secretmanager.secrets.create"]
}

# oauth_disconnect (ConnectService.disconnect): read the token once to revoke it at Google
# (TokenVault.read), then destroy every version and delete the secret (TokenVault.destroy).
#
# Why a public function keeps versions.access on every member's token: revoking at Google needs
# the token itself (Google's revoke endpoint takes nothing else), and the name-prefix condition
# cannot narrow further (secret names are hashes of tenant and member, one function serves all
# tenants). Since the disconnect also stops the member's push channel, which needs an access
# token, the function now also holds the OAuth client secret (functions.tf): a token it reads
# could be exchanged for read access to that member's calendar. What keeps this narrow: the
# function acts only for a valid disconnect link (signed with its own derived key, one hour,
# used up by the disconnect), it uses the token only for channels.stop and the revoke, and it
# has no versions.add (cannot plant a token). The alternative, revoking from sync_worker (which
# reads tokens anyway), would give the worker destroy/delete rights and make the disconnect
# asynchronous; we chose the smaller blast radius of this role.
resource "google_project_iam_custom_role" "token_remover" {
  role_id     = "calsyncTokenRemover"
  title       = "calsync refresh-token remover"
  description = "Read, destroy and delete calsync-rt-* secrets (granted with a name-prefix condition)."
  permissions = [
    "secretmanager.secrets.delete",
    "secretmanager.versions.access",
    "secretmanager.versions.destroy",
    "secretmanager.versions.list",
  ]
}

# --- Grants on the calsync-rt- prefix -------------------------------------------------------

# sync_worker: read tokens only.
resource "google_project_iam_member" "worker_reads_tokens" {
  project = var.project_id
  role    = google_project_iam_custom_role.token_reader.id
  member  = "serviceAccount:${google_service_account.function["sync_worker"].email}"

  condition {
    title       = "calsync-rt-secrets-only"
    description = "Only the per-member refresh-token secrets."
    expression  = local.token_condition
  }
}

resource "google_project_iam_member" "callback_writes_tokens" {
  project = var.project_id
  role    = google_project_iam_custom_role.token_writer.id
  member  = "serviceAccount:${google_service_account.function["oauth_callback"].email}"

  condition {
    title       = "calsync-rt-secrets-only"
    description = "Only the per-member refresh-token secrets."
    expression  = local.token_condition
  }
}

resource "google_project_iam_member" "callback_creates_tokens" {
  project = var.project_id
  role    = google_project_iam_custom_role.token_creator.id
  member  = "serviceAccount:${google_service_account.function["oauth_callback"].email}"

  condition {
    title       = "create-on-project-or-calsync-rt"
    description = "secrets.create is checked on the project; matches no existing secret."
    expression  = "resource.type == \"cloudresourcemanager.googleapis.com/Project\" || ${local.token_condition}"
  }
}

resource "google_project_iam_member" "disconnect_removes_tokens" {
  project = var.project_id
  role    = google_project_iam_custom_role.token_remover.id
  member  = "serviceAccount:${google_service_account.function["oauth_disconnect"].email}"

  condition {
    title       = "calsync-rt-secrets-only"
    description = "Only the per-member refresh-token secrets."
    expression  = local.token_condition
  }
}
