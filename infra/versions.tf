# calsync: one root module that deploys the whole pipeline into one Google Cloud project.
# One environment per project: the token-secret prefix (`calsync-rt-`), the Firestore
# `(default)` database and the topic names are fixed by the code, so two environments in one
# project would share them. `var.environment` labels everything and names the state prefix.

terraform {
  required_version = ">= 1.5.0"

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "~> 6.20"
    }
  }

  # Remote state in a GCS bucket created once by hand (see README, Deploy):
  #   terraform init -backend-config="bucket=PROJECT-tfstate" -backend-config="prefix=calsync/ENV"
  backend "gcs" {}
}

provider "google" {
  project = var.project_id
  region  = var.region

  default_labels = {
    app         = "calsync"
    environment = var.environment
    managed-by  = "terraform"
  }
}

data "google_project" "this" {
  project_id = var.project_id
}
