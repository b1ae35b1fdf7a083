"""Secret Manager v1 over REST (`/v1/projects/{p}/secrets...`), as the `rest` transport of
`google-cloud-secret-manager` calls it.

Like the real service, resource names in answers carry the project *number*
(`projects/123456789012/secrets/x`) whichever of id or number the request used; requests may use
either. `latest` names the most recently created version (Google's documented alias): accessing
it when that version is disabled or destroyed fails with FAILED_PRECONDITION, as does accessing
any disabled or destroyed version.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.sandbox.standin.web import Request, Response, json_response, rfc3339

MAX_PAYLOAD_BYTES = 64 * 1024
_SECRET_ID = re.compile(r"^[A-Za-z0-9_-]{1,255}$")
_PATH = re.compile(
    r"^/v1/projects/(?P<project>[^/]+)/secrets"
    r"(?:/(?P<secret>[^/:]+)"
    r"(?:/versions(?:/(?P<version>[^/:]+))?)?)?"
    r"(?::(?P<verb>[A-Za-z]+))?$"
)
_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def project_number(project: str) -> str:
    """A stable 12-digit project number for a project id (a number maps to itself)."""
    if project.isdigit():
        return project
    return str(100000000000 + int(hashlib.sha256(project.encode()).hexdigest(), 16) % 900000000000)


def google_error(status: int, message: str, code_name: str | None = None) -> Response:
    return json_response(
        status,
        {
            "error": {
                "code": status,
                "message": message,
                "status": code_name or _STATUS_NAMES.get(status, "UNKNOWN"),
            }
        },
    )


def secretmanager_fault_response(status: int, reason: str | None) -> Response:
    messages = {
        429: "Quota exceeded for quota metric 'Access requests' of service 'secretmanager.googleapis.com'.",
        500: "Internal error encountered.",
        503: "The service is currently unavailable.",
        403: "Permission denied on resource (or it might not exist).",
    }
    return google_error(status, messages.get(status, "Injected fault."), reason)


def crc32c(data: bytes) -> int:
    """CRC-32C (Castagnoli), as Secret Manager's `dataCrc32c`."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def _crc_table() -> list[int]:
    table = []
    for n in range(256):
        c = n
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    return table


_CRC32C_TABLE = _crc_table()


@dataclass
class SecretVersionRecord:
    number: int
    data: bytes
    state: str  # ENABLED | DISABLED | DESTROYED
    create_time: datetime
    destroy_time: datetime | None = None
    client_checksum: bool = False


@dataclass
class SecretRecord:
    project: str  # project number
    secret_id: str
    create_time: datetime
    labels: dict[str, str] = field(default_factory=dict)
    replication: dict[str, Any] = field(default_factory=lambda: {"automatic": {}})
    annotations: dict[str, str] = field(default_factory=dict)
    versions: list[SecretVersionRecord] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"projects/{self.project}/secrets/{self.secret_id}"

    def states(self) -> dict[int, str]:
        return {v.number: v.state for v in self.versions}


class SecretStore:
    """The stored secrets, for tests to inspect: `get(project, secret_id)`, `states(...)`,
    `list()`. Project may be given as id or number."""

    def __init__(self, clock: Callable[[], datetime]) -> None:
        self._clock = clock
        self._lock = threading.RLock()
        self._secrets: dict[tuple[str, str], SecretRecord] = {}

    def get(self, project: str, secret_id: str) -> SecretRecord | None:
        with self._lock:
            return self._secrets.get((project_number(project), secret_id))

    def states(self, project: str, secret_id: str) -> dict[int, str]:
        """Version number -> state; empty when the secret does not exist."""
        record = self.get(project, secret_id)
        return record.states() if record else {}

    def list(self, project: str | None = None) -> list[SecretRecord]:
        with self._lock:
            wanted = project_number(project) if project else None
            return [r for (p, _), r in sorted(self._secrets.items()) if wanted in (None, p)]

    def clear(self) -> None:
        with self._lock:
            self._secrets.clear()

    def __len__(self) -> int:
        with self._lock:
            return len(self._secrets)

    # --- REST -----------------------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        match = _PATH.match(request.path)
        if not match:
            return google_error(404, f"Method not found: {request.method} {request.path}")
        project = project_number(match["project"])
        secret_id, version, verb = match["secret"], match["version"], match["verb"]
        has_versions = "/versions" in request.path
        method = request.method
        try:
            with self._lock:
                if secret_id is None:
                    if method == "POST" and verb is None:
                        return self._create(project, request)
                    if method == "GET" and verb is None:
                        return self._list_secrets(project, request)
                elif not has_versions:
                    if method == "GET" and verb is None:
                        return json_response(200, _secret_json(self._secret(project, secret_id)))
                    if method == "DELETE" and verb is None:
                        del self._secrets[(project, self._secret(project, secret_id).secret_id)]
                        return json_response(200, {})
                    if method == "POST" and verb == "addVersion":
                        return self._add_version(self._secret(project, secret_id), request)
                elif version is None:
                    if method == "GET" and verb is None:
                        return self._list_versions(self._secret(project, secret_id), request)
                else:
                    record = self._secret(project, secret_id)
                    target = self._version(record, version)
                    if method == "GET" and verb is None:
                        return json_response(200, _version_json(record, target))
                    if method == "GET" and verb == "access":
                        return self._access(record, target)
                    if method == "POST" and verb in ("disable", "enable", "destroy"):
                        return self._change_state(record, target, verb)
        except _Failure as failure:
            return failure.response
        return google_error(404, f"Method not found: {method} {request.path}")

    def _secret(self, project: str, secret_id: str) -> SecretRecord:
        record = self._secrets.get((project, secret_id))
        if record is None:
            raise _Failure(google_error(404, f"Secret [projects/{project}/secrets/{secret_id}] not found."))
        return record

    def _version(self, record: SecretRecord, version: str) -> SecretVersionRecord:
        if version == "latest":
            if not record.versions:
                raise _Failure(google_error(404, f"Secret [{record.name}] not found or has no versions."))
            return record.versions[-1]
        if not version.isdigit():
            raise _Failure(google_error(400, f"Invalid secret version [{version}]."))
        for candidate in record.versions:
            if candidate.number == int(version):
                return candidate
        raise _Failure(google_error(404, f"Secret Version [{record.name}/versions/{version}] not found."))

    def _create(self, project: str, request: Request) -> Response:
        secret_id = request.arg("secretId") or ""
        if not _SECRET_ID.match(secret_id):
            return google_error(
                400,
                f"The provided Secret ID [{secret_id}] does not match the expected format [[a-zA-Z_0-9]+]",
            )
        body = _json_body(request)
        replication = body.get("replication")
        if not isinstance(replication, dict) or not (
            "automatic" in replication or "userManaged" in replication
        ):
            return google_error(400, "Secret.replication must be specified.")
        if (project, secret_id) in self._secrets:
            return google_error(409, f"Secret [projects/{project}/secrets/{secret_id}] already exists.")
        record = SecretRecord(
            project=project,
            secret_id=secret_id,
            create_time=self._clock(),
            labels=dict(body.get("labels") or {}),
            replication=replication,
            annotations=dict(body.get("annotations") or {}),
        )
        self._secrets[(project, secret_id)] = record
        return json_response(200, _secret_json(record))

    def _list_secrets(self, project: str, request: Request) -> Response:
        records = [r for (p, _), r in sorted(self._secrets.items()) if p == project]
        page, token = _paginate(records, request)
        payload: dict[str, Any] = {"secrets": [_secret_json(r) for r in page], "totalSize": len(records)}
        if token:
            payload["nextPageToken"] = token
        return json_response(200, payload)

    def _add_version(self, record: SecretRecord, request: Request) -> Response:
        payload = _json_body(request).get("payload") or {}
        try:
            data = base64.b64decode(payload.get("data") or "", validate=True)
        except (binascii.Error, ValueError):
            return google_error(400, "Invalid value at 'payload.data' (TYPE_BYTES), invalid base64.")
        if len(data) > MAX_PAYLOAD_BYTES:
            return google_error(400, f"Secret payload exceeds the maximum size of {MAX_PAYLOAD_BYTES} bytes.")
        checksum = payload.get("dataCrc32c")
        if checksum is not None and int(checksum) != crc32c(data):
            return google_error(400, "Checksum mismatch: the provided data_crc32c does not match the data.")
        number = (record.versions[-1].number + 1) if record.versions else 1
        version = SecretVersionRecord(
            number, data, "ENABLED", self._clock(), client_checksum=checksum is not None
        )
        record.versions.append(version)
        return json_response(200, _version_json(record, version))

    def _list_versions(self, record: SecretRecord, request: Request) -> Response:
        versions = list(reversed(record.versions))  # newest first, as Google lists them
        wanted = (request.arg("filter") or "").strip()
        if wanted:
            match = re.fullmatch(r"state\s*[:=]\s*(ENABLED|DISABLED|DESTROYED)", wanted)
            if not match:
                return google_error(400, f"Invalid filter [{wanted}]; the stand-in supports state:STATE.")
            versions = [v for v in versions if v.state == match[1]]
        page, token = _paginate(versions, request)
        payload: dict[str, Any] = {
            "versions": [_version_json(record, v) for v in page],
            "totalSize": len(versions),
        }
        if token:
            payload["nextPageToken"] = token
        return json_response(200, payload)

    def _access(self, record: SecretRecord, version: SecretVersionRecord) -> Response:
        if version.state != "ENABLED":
            return google_error(
                400,
                f"Secret Version [{record.name}/versions/{version.number}] is in {version.state} state.",
                "FAILED_PRECONDITION",
            )
        return json_response(
            200,
            {
                "name": f"{record.name}/versions/{version.number}",
                "payload": {
                    "data": base64.b64encode(version.data).decode("ascii"),
                    "dataCrc32c": str(crc32c(version.data)),
                },
            },
        )

    def _change_state(self, record: SecretRecord, version: SecretVersionRecord, verb: str) -> Response:
        if version.state == "DESTROYED":
            return google_error(
                400,
                f"Secret Version [{record.name}/versions/{version.number}] is in DESTROYED state.",
                "FAILED_PRECONDITION",
            )
        if verb == "disable":
            version.state = "DISABLED"
        elif verb == "enable":
            version.state = "ENABLED"
        else:
            version.state = "DESTROYED"
            version.data = b""
            version.destroy_time = self._clock()
        return json_response(200, _version_json(record, version))


class _Failure(Exception):
    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = request.json()
    except ValueError as exc:
        raise _Failure(google_error(400, f"Invalid JSON payload received. {exc}")) from exc
    if not isinstance(body, dict):
        raise _Failure(google_error(400, "Invalid JSON payload received: expected an object."))
    return body


def _paginate(items: list[Any], request: Request) -> tuple[list[Any], str | None]:
    try:
        size = int(request.arg("pageSize") or 0) or 25000
        start = int(request.arg("pageToken") or 0)
    except ValueError as exc:
        raise _Failure(google_error(400, "Invalid pageSize or pageToken.")) from exc
    end = start + size
    return items[start:end], (str(end) if end < len(items) else None)


def _etag(moment: datetime, extra: str = "") -> str:
    return '"' + hashlib.sha1(f"{moment.isoformat()}{extra}".encode()).hexdigest()[:14] + '"'  # noqa: S324


def _secret_json(record: SecretRecord) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": record.name,
        "replication": record.replication,
        "createTime": rfc3339(record.create_time, 6),
        "etag": _etag(record.create_time, record.name),
    }
    if record.labels:
        payload["labels"] = record.labels
    if record.annotations:
        payload["annotations"] = record.annotations
    return payload


def _version_json(record: SecretRecord, version: SecretVersionRecord) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "name": f"{record.name}/versions/{version.number}",
        "createTime": rfc3339(version.create_time, 6),
        "state": version.state,
        "replicationStatus": {"automatic": {}},
        "etag": _etag(version.create_time, f"{version.number}{version.state}"),
        "clientSpecifiedPayloadChecksum": version.client_checksum,
    }
    if version.destroy_time is not None:
        payload["destroyTime"] = rfc3339(version.destroy_time, 6)
    return payload
