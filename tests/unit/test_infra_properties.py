"""Properties of the Terraform in infra/ (and of cloudbuild.yaml), read by parsing the files.

Pure file parsing with python-hcl2: no terraform binary, no provider download, no network.
Each test states one deployment rule from the issue / CONVENTIONS (cloud-foundation-fabric):
one service account per function, no primitive roles, retry and dead-letter policies on the
job path, OIDC from the scheduler, only the OAuth endpoints and calendar_notification (which
authenticates each request by its channel token) public, token secrets scoped to their name
prefix, one bundle named by its content hash.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import hcl2

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"

ENTRY_POINTS = {
    "oauth_connect",
    "oauth_callback",
    "oauth_disconnect",
    "schedule_sync",
    "sync_worker",
    "calendar_notification",
}
OAUTH_ENTRY_POINTS = {"oauth_connect", "oauth_callback", "oauth_disconnect"}
# Public: the OAuth endpoints (signed link or state) and calendar_notification, which Google's
# push servers call without credentials and which authenticates each request by channel token.
PUBLIC_ENTRY_POINTS = OAUTH_ENTRY_POINTS | {"calendar_notification"}
PRIMITIVE_ROLES = {"roles/owner", "roles/editor", "roles/viewer"}
PUBLIC_MEMBERS = {"allUsers", "allAuthenticatedUsers"}
TOKEN_PREFIX = "/secrets/calsync-rt-"

_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)


# --- reading the module ------------------------------------------------------------------------


@functools.cache
def _module() -> dict[str, dict[str, Any]]:
    """Every .tf file of infra/, parsed: {file name: document}."""
    parsed = {}
    for path in sorted(INFRA.glob("*.tf")):
        with path.open(encoding="utf-8") as handle:
            parsed[path.name] = hcl2.load(handle, serialization_options=_OPTIONS)
    assert parsed, "infra/ has no .tf files"
    return parsed


def _resources(kind: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """{(type, name): body} of every resource (of one type when `kind` is given)."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for document in _module().values():
        for block in document.get("resource", []):
            for rtype, named in block.items():
                for name, body in named.items():
                    if kind is None or rtype == kind:
                        found[(rtype, name)] = body
    return found


def _resource(kind: str, name: str) -> dict[str, Any]:
    resources = _resources(kind)
    assert (kind, name) in resources, f"missing resource {kind}.{name}"
    return resources[(kind, name)]


def _locals() -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for document in _module().values():
        for block in document.get("locals", []):
            merged.update(block)
    return merged


def _variables() -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for document in _module().values():
        for block in document.get("variable", []):
            merged.update(block)
    return merged


def _block(body: dict[str, Any], name: str) -> dict[str, Any]:
    """The single nested block `name` of a resource body."""
    blocks = body.get(name)
    assert isinstance(blocks, list), f"block {name!r} missing"
    assert len(blocks) == 1, f"expected one {name!r} block, found {len(blocks)}"
    return blocks[0]


def _functions() -> dict[str, dict[str, Any]]:
    return _locals()["functions"]


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


def _iam_grants() -> list[tuple[str, str, dict[str, Any]]]:
    """(address, role, body) of every IAM member/binding resource."""
    grants = []
    for (rtype, name), body in _resources().items():
        if rtype.endswith(("_iam_member", "_iam_binding")):
            grants.append((f"{rtype}.{name}", body["role"], body))
    return grants


def _seconds(duration: str) -> int:
    assert re.fullmatch(r"\d+s", duration), duration
    return int(duration[:-1])


def _members(body: dict[str, Any]) -> list[str]:
    return [body["member"]] if "member" in body else list(body.get("members", []))


# --- the functions -----------------------------------------------------------------------------


def test_the_six_entry_points_are_deployed_from_the_python311_runtime() -> None:
    functions = _functions()
    assert set(functions) == ENTRY_POINTS
    for key, fn in functions.items():
        assert fn["entry_point"] == key
    build = _block(_resource("google_cloudfunctions2_function", "fn"), "build_config")
    assert build["runtime"] == "python311"
    assert build["entry_point"] == "${each.value.entry_point}"


def test_each_function_has_its_own_service_account() -> None:
    fn = _resource("google_cloudfunctions2_function", "fn")
    accounts = _resource("google_service_account", "function")
    assert fn["for_each"] == accounts["for_each"] == "${local.functions}"
    assert accounts["account_id"] == "${each.value.name}"
    names = [f["name"] for f in _functions().values()]
    assert len(set(names)) == len(names), "function (and so service account) names must be unique"
    assert all(6 <= len(name) <= 30 for name in names), "service account ids are 6..30 characters"

    # No two function resources point at the same account expression.
    used = [
        _block(body, "service_config")["service_account_email"]
        for _, body in _resources("google_cloudfunctions2_function").items()
    ]
    assert len(set(used)) == len(used)
    assert all("[each.key]" in expression for expression in used)


def test_every_function_states_memory_timeout_instances_and_concurrency() -> None:
    for key, fn in _functions().items():
        for setting in ("memory", "cpu", "timeout", "max_instances", "concurrency"):
            assert setting in fn, f"{key}: {setting} not stated"
        assert fn["concurrency"] == 1 or float(fn["cpu"]) >= 1, f"{key}: concurrency > 1 needs >= 1 vCPU"
    config = _block(_resource("google_cloudfunctions2_function", "fn"), "service_config")
    assert config["available_memory"] == "${each.value.memory}"
    assert config["timeout_seconds"] == "${each.value.timeout}"
    assert config["max_instance_count"] == "${each.value.max_instances}"
    assert config["max_instance_request_concurrency"] == "${each.value.concurrency}"
    # Event-style work keeps to the 9-minute limit; the HTTP fan-out fits Scheduler's 30 min.
    assert _functions()["sync_worker"]["timeout"] <= 540
    assert _functions()["schedule_sync"]["timeout"] <= 1800


def test_configuration_env_and_platform_injected_secrets() -> None:
    rendered = str(_locals()["common_env"])
    for name in (
        "GOOGLE_CLOUD_PROJECT",
        "CALSYNC_OAUTH_CLIENT_ID",
        "CALSYNC_OAUTH_REDIRECT_URI",
        "CALSYNC_CONNECT_URL",
        "CALSYNC_DISCONNECT_URL",
        "CALSYNC_SYNC_TOPIC",
    ):
        assert name in rendered, f"{name} is not set on the functions"
    urls = _locals()["function_urls"]
    assert "cloudfunctions.net" in str(urls), "function URLs must use the predictable cloudfunctions.net form"

    allowed = {"CALSYNC_OAUTH_CLIENT_SECRET", "CALSYNC_LINK_SIGNING_KEY", "CALSYNC_CHANNEL_TOKEN_KEY"}
    for key, fn in _functions().items():
        assert set(fn["secret_env"]) <= allowed, key
        assert not set(fn["extra_env"]) & allowed, f"{key}: secrets must not be plain env vars"
        if key in OAUTH_ENTRY_POINTS:
            assert "CALSYNC_LINK_SIGNING_KEY" in fn["secret_env"], key
    assert "CALSYNC_OAUTH_CLIENT_SECRET" in _functions()["sync_worker"]["secret_env"]
    assert "CALSYNC_SYNC_BUDGET_S" in _functions()["sync_worker"]["extra_env"]

    config = _block(_resource("google_cloudfunctions2_function", "fn"), "service_config")
    injected = _block(config["dynamic"][0]["secret_environment_variables"], "content")
    assert injected["version"] == "latest"
    assert "google_secret_manager_secret.config" in injected["secret"]
    # No secret value is ever put in Terraform (state): the secrets have no version resource.
    assert not _resources("google_secret_manager_secret_version")


# Secret env var -> key of google_secret_manager_secret.config (= the field in shared/config.py).
SECRETS = {
    "CALSYNC_OAUTH_CLIENT_SECRET": "oauth_client_secret",
    "CALSYNC_LINK_SIGNING_KEY": "link_signing_key",
    "CALSYNC_CHANNEL_TOKEN_KEY": "channel_token_key",
}
# Least privilege: exactly the secrets each function holds. The OAuth client secret where a code
# is exchanged (oauth_callback) or a token refreshed: sync_worker, and oauth_disconnect, which
# stops the member's push channel before revoking and needs an access token for that. Not to
# build a consent URL (oauth_connect) nor to check a notification (calendar_notification). The
# channel token key where channel tokens are made (sync_worker) or checked
# (calendar_notification); disconnect stops a channel by its ids and needs no token key.
SECRETS_BY_FUNCTION = {
    "oauth_connect": {"link_signing_key"},
    "oauth_callback": {"oauth_client_secret", "link_signing_key"},
    "oauth_disconnect": {"link_signing_key", "oauth_client_secret"},
    "schedule_sync": set(),
    "sync_worker": {"oauth_client_secret", "channel_token_key"},
    "calendar_notification": {"channel_token_key"},
}


def _needs(entry_point: str) -> tuple[str, ...] | None:
    """What the code requires of the environment for one entry point (shared/config.py), or
    None when shared/config.py does not declare that entry point's needs."""
    from shared import config

    declared = {
        **config.OAUTH_ENTRY_POINTS,
        "sync_worker": config.WORKER,
        "schedule_sync": ("project",),
        # The channel key (CALSYNC_CHANNEL_TOKEN_KEY, or one derived from the link key) is read
        # when a notification is judged: `Config.channel_key` raises without either.
        "calendar_notification": (*config.NOTIFICATION, "channel_token_key"),
    }
    return declared.get(entry_point)


def test_each_function_holds_exactly_its_secrets() -> None:
    assert set(_resource("google_secret_manager_secret", "config")["for_each"]) == set(SECRETS.values())
    for key, fn in _functions().items():
        assert set(fn["secret_env"]) <= set(SECRETS), key
        assert {SECRETS[name] for name in fn["secret_env"]} == SECRETS_BY_FUNCTION[key], key
        for name, secret in fn["secret_env"].items():
            assert SECRETS[name] == secret, f"{key}: {name} must be injected from {SECRETS[name]}"
    holders = {k for k, f in _functions().items() if "CALSYNC_OAUTH_CLIENT_SECRET" in f["secret_env"]}
    assert holders == {"oauth_callback", "sync_worker", "oauth_disconnect"}


def test_every_secret_the_code_requires_is_injected() -> None:
    """A function whose code requires a secret it was not given fails at its first request."""
    for key, fn in _functions().items():
        needs = _needs(key)
        assert needs is not None, f"{key}: shared/config.py declares nothing for it"
        injected = {SECRETS[name] for name in fn["secret_env"]}
        required = set(needs) & set(SECRETS.values())
        assert required <= injected, f"{key}: the code requires {sorted(required - injected)}, not injected"


def test_firestore_roles_are_per_function_and_never_admin() -> None:
    grant = _resource("google_project_iam_member", "function_datastore")
    assert grant["for_each"] == "${local.functions}"
    assert grant["role"] == "${each.value.datastore_role}"
    roles = {key: fn["datastore_role"] for key, fn in _functions().items()}
    # every function writes: schedule_sync too, since it holds the members it publishes (a backlog
    # must not amplify); Firestore IAM has no narrower role that still allows that one field
    assert set(roles.values()) == {"roles/datastore.user"}, roles
    assert not [a for a, r, _ in _iam_grants() if r in {"roles/datastore.owner", "roles/datastore.admin"}]


def test_bundle_is_one_zip_named_by_its_content_hash() -> None:
    local = _locals()
    assert local["bundle_sha256"].startswith("${filesha256(")
    assert "${local.bundle_sha256}" in local["bundle_object"]
    obj = _resource("google_storage_bucket_object", "bundle")
    assert obj["name"] == "${local.bundle_object}"
    for address, body in _resources("google_cloudfunctions2_function").items():
        source = _block(_block(_block(body, "build_config"), "source"), "storage_source")
        assert source["object"] == "${google_storage_bucket_object.bundle.name}", address
    assert len(_resources("google_storage_bucket_object")) == 1


def test_bundle_script_is_reproducible_and_holds_the_right_files(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("calsync_infra_bundle", INFRA / "bundle.py")
    assert spec is not None
    assert spec.loader is not None
    bundle = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bundle)
    first = bundle.build_bundle(tmp_path / "a.zip")
    second = bundle.build_bundle(tmp_path / "b.zip")
    assert first == second == hashlib.sha256((tmp_path / "a.zip").read_bytes()).hexdigest()
    names = zipfile.ZipFile(tmp_path / "a.zip").namelist()
    assert {"main.py", "requirements.txt", "shared/__init__.py"} <= set(names)
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc") or n.startswith("tests/")]


# --- IAM ---------------------------------------------------------------------------------------


def test_no_primitive_roles_and_no_authoritative_project_policies() -> None:
    for address, role, _ in _iam_grants():
        assert role not in PRIMITIVE_ROLES, f"{address} grants {role}"
    for text in _strings(_module()):
        assert not PRIMITIVE_ROLES & set(re.findall(r"roles/[a-zA-Z.]+", text)), text
    for rtype, _ in _resources():
        assert rtype not in {"google_project_iam_policy", "google_project_iam_binding"}, rtype
    for _, role in _resources("google_project_iam_custom_role").items():
        assert not [p for p in role["permissions"] if "*" in p]


def test_only_the_oauth_functions_and_calendar_notification_are_public() -> None:
    public = [(a, b) for a, _, b in _iam_grants() if PUBLIC_MEMBERS & set(_members(b))]
    assert [a for a, _ in public] == ["google_cloud_run_v2_service_iam_member.public_invoker"]
    body = public[0][1]
    assert body["role"] == "roles/run.invoker"
    assert "if f.public" in body["for_each"]
    assert {k for k, f in _functions().items() if f["public"]} == PUBLIC_ENTRY_POINTS
    config = _block(_resource("google_cloudfunctions2_function", "fn"), "service_config")
    assert "ALLOW_INTERNAL_ONLY" in config["ingress_settings"]


def test_only_the_scheduler_account_invokes_schedule_sync_and_only_pubsub_the_worker() -> None:
    invokers: dict[str, set[str]] = {}
    for address, role, body in _iam_grants():
        if role == "roles/run.invoker" and "public_invoker" not in address:
            invokers.setdefault(body["name"], set()).update(_members(body))
    schedule = '${google_cloudfunctions2_function.fn["schedule_sync"].name}'
    worker = '${google_cloudfunctions2_function.fn["sync_worker"].name}'
    assert invokers[schedule] == {"serviceAccount:${google_service_account.scheduler.email}"}
    assert invokers[worker] == {"serviceAccount:${google_service_account.pubsub_push.email}"}


def test_scheduler_calls_schedule_sync_with_an_oidc_token() -> None:
    job = _resource("google_cloud_scheduler_job", "sync")
    assert job["schedule"] == "${var.sync_schedule}"
    target = _block(job, "http_target")
    assert target["uri"] == "${local.schedule_sync_uri}"
    assert "schedule_sync" in _locals()["schedule_sync_uri"]
    oidc = _block(target, "oidc_token")
    assert oidc["service_account_email"] == "${google_service_account.scheduler.email}"
    assert "oauth_token" not in target
    assert _block(job, "retry_config")["retry_count"] >= 1


def test_token_secrets_are_scoped_to_their_prefix_and_never_public() -> None:
    assert _locals()["token_secret_prefix"].endswith(TOKEN_PREFIX)
    assert "startsWith" in _locals()["token_condition"]
    for address, role, body in _iam_grants():
        if "secret" in address or "secretmanager" in role or "token" in role.lower():
            assert not PUBLIC_MEMBERS & set(_members(body)), address
    grants = {
        address: (role, body)
        for address, role, body in _iam_grants()
        if address.startswith("google_project_iam_member.")
        and ("secretmanager" in role or "google_project_iam_custom_role.token" in role)
    }
    assert grants, "no prefix-scoped token grants found"
    for address, (role, body) in grants.items():
        assert role != "roles/secretmanager.admin", address
        expression = _block(body, "condition")["expression"]
        assert "${local.token_condition}" in expression, address
        if "creates_tokens" not in address:
            assert expression == "${local.token_condition}", address

    worker_roles = {r for a, (r, b) in grants.items() if "sync_worker" in b["member"]}
    assert worker_roles == {"${google_project_iam_custom_role.token_reader.id}"}


def test_token_custom_roles_hold_only_what_each_use_case_calls() -> None:
    roles = _resources("google_project_iam_custom_role")
    reader = set(roles[("google_project_iam_custom_role", "token_reader")]["permissions"])
    creator = roles[("google_project_iam_custom_role", "token_creator")]["permissions"]
    writer = set(roles[("google_project_iam_custom_role", "token_writer")]["permissions"])
    remover = set(roles[("google_project_iam_custom_role", "token_remover")]["permissions"])
    assert "secretmanager.versions.access" in reader
    assert reader <= {
        "secretmanager.versions.access",
        "secretmanager.versions.list",
        "secretmanager.versions.get",
    }
    assert creator == ["secretmanager.secrets.create"]
    assert {"secretmanager.versions.add", "secretmanager.versions.destroy"} <= writer
    assert "secretmanager.versions.access" not in writer
    assert not {"secretmanager.secrets.delete", "secretmanager.secrets.setIamPolicy"} & writer
    assert {"secretmanager.secrets.delete", "secretmanager.versions.destroy"} <= remover
    assert not [p for p in writer | remover if p.endswith(("setIamPolicy", ".create"))]


def _token_permissions_by_function() -> dict[str, set[str]]:
    """{function key: Secret Manager permissions it holds on tokens through the custom roles}."""
    roles = {
        f"${{google_project_iam_custom_role.{name}.id}}": set(body["permissions"])
        for (_, name), body in _resources("google_project_iam_custom_role").items()
    }
    held: dict[str, set[str]] = {}
    for _, role, body in _iam_grants():
        found = re.search(r'google_service_account\.function\["(\w+)"\]', str(body.get("member", "")))
        if found and role in roles:
            held.setdefault(found.group(1), set()).update(roles[role])
    return held


def test_public_functions_that_touch_tokens_cannot_plant_them() -> None:
    """oauth_disconnect reads a member's token to stop the push channel and revoke (secrets.tf
    says why it also holds the client secret); no public function that can read tokens may add
    token versions, and calendar_notification, the other public function besides the OAuth
    ones, holds no token permission and no client secret at all."""
    held = _token_permissions_by_function()
    readers = {k for k, permissions in held.items() if "secretmanager.versions.access" in permissions}
    assert readers == {"sync_worker", "oauth_disconnect"}, readers
    for key in readers:
        if _functions()[key]["public"]:
            assert "secretmanager.versions.add" not in held[key], key
    assert "calendar_notification" not in held
    assert "CALSYNC_OAUTH_CLIENT_SECRET" not in _functions()["calendar_notification"]["secret_env"]


# Secret Manager client method -> the permission it is checked against.
_SECRET_METHOD_PERMISSIONS = {
    "access_secret_version": "secretmanager.versions.access",
    "list_secret_versions": "secretmanager.versions.list",
    "get_secret_version": "secretmanager.versions.get",
    "add_secret_version": "secretmanager.versions.add",
    "destroy_secret_version": "secretmanager.versions.destroy",
    "disable_secret_version": "secretmanager.versions.disable",
    "enable_secret_version": "secretmanager.versions.enable",
    "create_secret": "secretmanager.secrets.create",
    "get_secret": "secretmanager.secrets.get",
    "update_secret": "secretmanager.secrets.update",
    "delete_secret": "secretmanager.secrets.delete",
}


def test_token_roles_cover_every_secret_manager_call_the_code_makes() -> None:
    """If the token vault starts calling a new Secret Manager method, the IAM must follow."""
    vault = REPO / "shared" / "adapters" / "secrets.py"
    called = set(re.findall(r"_client\.(\w+)\(", vault.read_text(encoding="utf-8")))
    assert called, "no Secret Manager calls found: did the vault move?"
    unknown = called - set(_SECRET_METHOD_PERMISSIONS)
    assert not unknown, f"map these Secret Manager calls to permissions (and grant them): {unknown}"
    roles = _resources("google_project_iam_custom_role")
    granted = {p for body in roles.values() for p in body["permissions"]}
    needed = {_SECRET_METHOD_PERMISSIONS[m] for m in called}
    assert needed <= granted, f"not granted to any token role: {needed - granted}"


# --- push notifications ------------------------------------------------------------------------

NOTIFICATION_SA = 'google_service_account.function["calendar_notification"]'


def test_calendar_notification_is_public_and_authenticates_by_channel_token_only() -> None:
    fn = _functions()["calendar_notification"]
    assert fn["public"] is True  # ALLOW_ALL ingress and allUsers invoker, like the OAuth endpoints
    assert fn["entry_point"] == "calendar_notification"
    assert fn["secret_env"] == {"CALSYNC_CHANNEL_TOKEN_KEY": "channel_token_key"}
    assert fn["extra_env"] == {}
    skip = (INFRA / "functions.tf").read_text(encoding="utf-8").split('"public_invoker" {', 1)[1]
    assert "calendar_notification" in skip.split("\n", 2)[1], "the skip must justify the new public function"


def test_calendar_notification_account_holds_datastore_user_the_topic_publisher_and_its_key() -> None:
    """Its grants come only from the per-function resources; nothing names its account directly."""
    fn = _functions()["calendar_notification"]
    per_function: dict[str, tuple[str, str]] = {}
    for address, role, body in _iam_grants():
        assert "calendar_notification" not in str(body), f"{address} names calendar_notification directly"
        member = str(body.get("member", ""))
        if "google_service_account.function[each." in member:
            per_function[address] = (role, str(body.get("for_each", "")))
    assert set(per_function) == {
        "google_project_iam_member.function_datastore",
        "google_pubsub_topic_iam_member.sync_jobs_publisher",
        "google_secret_manager_secret_iam_member.config_accessor",
    }, per_function

    grants = set()
    datastore = _resource("google_project_iam_member", "function_datastore")
    assert datastore["for_each"] == "${local.functions}"
    grants.add(("project", fn["datastore_role"]))
    publisher = _resource("google_pubsub_topic_iam_member", "sync_jobs_publisher")
    assert "if f.publishes_jobs" in publisher["for_each"]
    if fn["publishes_jobs"]:
        grants.add((publisher["topic"], publisher["role"]))
    accessor = _resource("google_secret_manager_secret_iam_member", "config_accessor")
    assert "fn.secret_env" in accessor["for_each"]
    for secret in fn["secret_env"].values():
        grants.add((f"secret {secret}", accessor["role"]))
    assert grants == {
        ("project", "roles/datastore.user"),
        ("${google_pubsub_topic.sync_jobs.id}", "roles/pubsub.publisher"),
        ("secret channel_token_key", "roles/secretmanager.secretAccessor"),
    }
    assert "calendar_notification" not in _token_permissions_by_function()


def test_channel_token_key_is_injected_into_calendar_notification_and_the_worker_only() -> None:
    secrets = _resource("google_secret_manager_secret", "config")["for_each"]
    assert secrets["channel_token_key"] == "calsync-channel-token-key"
    holders = {k for k, f in _functions().items() if "channel_token_key" in f["secret_env"].values()}
    assert holders == {"calendar_notification", "sync_worker"}
    assert "CALSYNC_CHANNEL_TOKEN_KEY" not in str(_locals()["common_env"])
    assert "CALSYNC_CHANNEL_TOKEN_KEY" not in str(_locals()["url_env"])
    for key, fn in _functions().items():
        assert "CALSYNC_CHANNEL_TOKEN_KEY" not in fn["extra_env"], key


def test_the_worker_gets_the_notification_url_and_the_channel_settings() -> None:
    url = '${local.function_urls["calendar_notification"]}'
    assert _locals()["url_env"] == {"sync_worker": {"CALSYNC_NOTIFICATION_URL": url}}
    config = _block(_resource("google_cloudfunctions2_function", "fn"), "service_config")
    assert "lookup(local.url_env, each.key, {})" in config["environment_variables"]
    assert "CALSYNC_NOTIFICATION_URL" not in str(_locals()["common_env"])
    outputs = {
        name: body
        for document in _module().values()
        for block in document.get("output", [])
        for name, body in block.items()
    }
    assert outputs["notification_url"]["value"] == url

    worker_env = _functions()["sync_worker"]["extra_env"]
    assert worker_env["CALSYNC_CHANNEL_TTL_S"] == "${tostring(var.channel_ttl_seconds)}"
    assert worker_env["CALSYNC_BACKSTOP_INTERVAL_S"] == "${tostring(var.backstop_interval_seconds)}"
    variables = _variables()
    assert variables["channel_ttl_seconds"]["default"] == 604800
    assert variables["backstop_interval_seconds"]["default"] == 21600
    for name in ("channel_ttl_seconds", "backstop_interval_seconds"):
        assert variables[name]["type"] == "number"
        assert f"var.{name}" in variables[name]["validation"][0]["condition"], name


# --- Pub/Sub -----------------------------------------------------------------------------------


def test_worker_subscription_retries_with_backoff_and_dead_letters() -> None:
    sub = _resource("google_pubsub_subscription", "sync_worker_push")
    assert sub["topic"] == "${google_pubsub_topic.sync_jobs.id}"
    retry = _block(sub, "retry_policy")
    assert 0 < _seconds(retry["minimum_backoff"]) < _seconds(retry["maximum_backoff"]) <= 600
    dead = _block(sub, "dead_letter_policy")
    assert dead["dead_letter_topic"] == "${google_pubsub_topic.sync_dead_letter.id}"
    assert dead["max_delivery_attempts"]
    assert sub["ack_deadline_seconds"] >= _functions()["sync_worker"]["timeout"]
    push = _block(sub, "push_config")
    assert _block(push, "oidc_token")["service_account_email"] == (
        "${google_service_account.pubsub_push.email}"
    )


def test_dead_letters_are_kept_and_the_pubsub_agent_can_move_them() -> None:
    holders = [
        body
        for body in _resources("google_pubsub_subscription").values()
        if body["topic"] == "${google_pubsub_topic.sync_dead_letter.id}"
    ]
    assert holders, "no subscription keeps the dead letters"
    assert _block(holders[0], "expiration_policy")["ttl"] == ""
    agent = "${local.pubsub_agent}"
    assert "gcp-sa-pubsub" in _locals()["pubsub_agent"]
    publisher = _resource("google_pubsub_topic_iam_member", "dead_letter_publisher")
    assert (publisher["topic"], publisher["role"], publisher["member"]) == (
        "${google_pubsub_topic.sync_dead_letter.id}",
        "roles/pubsub.publisher",
        agent,
    )
    subscriber = _resource("google_pubsub_subscription_iam_member", "worker_push_dead_letter_subscriber")
    assert (subscriber["role"], subscriber["member"]) == ("roles/pubsub.subscriber", agent)


def test_publishing_is_granted_on_the_topic_to_the_functions_that_publish() -> None:
    grant = _resource("google_pubsub_topic_iam_member", "sync_jobs_publisher")
    assert grant["topic"] == "${google_pubsub_topic.sync_jobs.id}"
    publishers = {k for k, f in _functions().items() if f["publishes_jobs"]}
    assert publishers == {"schedule_sync", "sync_worker", "oauth_callback", "calendar_notification"}


def test_event_triggers_have_retries_on() -> None:
    triggered = [b for b in _resources("google_cloudfunctions2_function").values() if "event_trigger" in b]
    assert triggered, "directory_changed should be declared (behind its variable)"
    for body in triggered:
        assert _block(body, "event_trigger")["retry_policy"] == "RETRY_POLICY_RETRY"


def test_directory_trigger_is_in_its_own_file_and_on_by_default() -> None:
    assert "google_cloudfunctions2_function" in str(_module()["directory_trigger.tf"])
    assert _variables()["enable_directory_trigger"]["default"] is True
    assert "var.enable_directory_trigger" in _locals()["directory_triggers"]


# --- Firestore ---------------------------------------------------------------------------------


def _index_fields(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(f["field_path"], f["order"]) for f in body["fields"]]


def test_composite_indexes_for_the_codes_queries() -> None:
    due = _resource("google_firestore_index", "members_due")
    assert (due["collection"], due["query_scope"]) == ("members", "COLLECTION_GROUP")
    assert _index_fields(due)[:2] == [("calendar.status", "ASCENDING"), ("calendar.nextSyncAt", "ASCENDING")]
    by_account = _resource("google_firestore_index", "interactions_by_account")
    assert by_account["collection"] == "interactions"
    assert [f for f, _ in _index_fields(by_account)][:2] == ["accountId", "startTime"]


def test_big_and_sequential_fields_are_exempt_and_oauth_states_expire() -> None:
    exempt = {(v["collection"], v["field"]) for v in _locals()["unindexed_fields"].values()}
    assert {
        ("meetings", "copies"),
        ("meetings", "interactions"),
        ("meetings", "unmatched"),
        ("interactions", "participants"),
        ("interactions", "attendees"),
        ("interactions", "createdAt"),
        ("interactions", "updatedAt"),
    } <= exempt
    assert _resource("google_firestore_field", "unindexed")["index_config"] == [{}]
    ttl = _resource("google_firestore_field", "oauth_state_ttl")
    assert (ttl["collection"], ttl["field"]) == ("oauthStates", "expiresAt")
    assert "ttl_config" in ttl


def test_push_channel_lookups_expire_and_need_no_composite_index() -> None:
    ttl = _resource("google_firestore_field", "channel_ttl")
    assert (ttl["collection"], ttl["field"]) == ("channels", "expireAt")
    assert "ttl_config" in ttl
    assert ttl["index_config"] == [{}]  # never queried, sequential
    assert not [b for b in _resources("google_firestore_index").values() if b["collection"] == "channels"]


def test_required_apis_are_enabled() -> None:
    apis = set(_locals()["apis"])
    for api in (
        "cloudfunctions.googleapis.com",
        "run.googleapis.com",
        "cloudbuild.googleapis.com",
        "pubsub.googleapis.com",
        "cloudscheduler.googleapis.com",
        "secretmanager.googleapis.com",
        "firestore.googleapis.com",
        "calendar-json.googleapis.com",
    ):
        assert api in apis, api


# --- documentation and lint hygiene --------------------------------------------------------------


def test_every_checkov_skip_gives_a_reason() -> None:
    skips = 0
    for path in INFRA.glob("*.tf"):
        for line in path.read_text(encoding="utf-8").splitlines():
            if "checkov:skip" in line:
                skips += 1
                assert re.search(r"#\s*checkov:skip=CKV2?_[A-Z]+_\d+:\s*\S.{15,}", line), line
    assert skips, "expected the documented skips"


def test_tfvars_example_mentions_every_variable() -> None:
    example = (INFRA / "terraform.tfvars.example").read_text(encoding="utf-8")
    for name in _variables():
        assert re.search(rf"^#?\s*{name}\s*=", example, re.MULTILINE), f"{name} missing from the example"


def test_cloudbuild_runs_the_stages_in_order_with_pinned_images_and_gated_apply() -> None:
    text = (REPO / "cloudbuild.yaml").read_text(encoding="utf-8")
    ids = re.findall(r"^\s*- id: (\S+)", text, re.MULTILINE)
    order = ["lint", "unit-tests", "integration-tests", "bundle", "terraform-plan", "terraform-apply"]
    assert [i for i in ids if i in order] == order
    for image in re.findall(r"^\s*name: (\S+)", text, re.MULTILINE):
        assert "@sha256:" in image or re.search(r":[0-9][\w.-]*$", image), f"{image} is not pinned"
        assert not image.endswith(":latest")
    apply_step = text.split("- id: terraform-apply", 1)[1]
    assert '"${_APPLY}" = "true"' in apply_step
    assert "terraform apply -input=false tfplan" in apply_step
    assert "make integration" in text
