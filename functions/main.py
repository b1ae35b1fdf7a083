"""Every Cloud Function entry point of calsync (names are a contract, SPEC).

Each one is short: decode the request or event -> get dependencies from `shared.bootstrap` ->
call one service -> map the outcome to an HTTP status or an acknowledgement. A returned value
acknowledges; a raised exception answers 500 and makes Pub/Sub redeliver.
"""
