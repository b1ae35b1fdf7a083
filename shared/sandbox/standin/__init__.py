"""A local stand-in for the Google services that have no official emulator: OAuth 2.0
(authorization, token and revocation endpoints), Calendar API v3 (events of `primary`) and
Secret Manager v1 (REST). It speaks their real wire formats so the production client libraries
run against it unchanged. The public entry point is `shared.sandbox.google_standin.GoogleStandIn`.
"""
