"""The local sandbox: Google's Firestore and Pub/Sub emulators, and one stand-in HTTP server
for the Google services that have no emulator (OAuth, Calendar, Secret Manager)."""
