"""What ships: the function bundle infra/bundle.py builds holds everything production imports,
and nothing of the local tools.

The bundle is built exactly as the pipeline builds it (`build_bundle`), unzipped into a
temporary directory, and imported in a fresh interpreter that sees only that directory and the
virtualenv's third-party packages: not the repository, and not its editable install. There,
every entry point Terraform deploys is loaded the way the runtime loads it
(`functions_framework.create_app`), then every module of the bundle is imported.
"""

from __future__ import annotations

import ast
import importlib.util
import json
import site
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import hcl2
import pytest

REPO = Path(__file__).resolve().parents[2]
INFRA = REPO / "infra"
LOCAL_TOOLS = ("shared.sandbox", "shared.cli")
# How functions-framework calls each deployed entry point (its decorator in functions/main.py).
SIGNATURES = {
    "schedule_sync": "http",
    "oauth_connect": "http",
    "oauth_callback": "http",
    "oauth_disconnect": "http",
    "sync_worker": "cloudevent",
    "calendar_notification": "http",  # Google Calendar's push notifications (POST, headers only)
    "directory_changed": "cloudevent",
}
# Modules of Google's client libraries; an entry point must not load one at import time.
SDK_PREFIXES = ("google.cloud", "google.api_core", "googleapiclient", "google_auth_oauthlib", "google.pubsub")


def _bundle_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("calsync_infra_bundle", INFRA / "bundle.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundle as the pipeline builds it, unzipped."""
    work = tmp_path_factory.mktemp("bundle")
    archive = work / "calsync-functions.zip"
    _bundle_script().build_bundle(archive)
    unpacked = work / "unpacked"
    with zipfile.ZipFile(archive) as bundle:
        bundle.extractall(unpacked)
    return unpacked


def _deployed_entry_points() -> set[str]:
    """`entry_point` of every Cloud Function in infra/ (resolving `each.value` through the
    `functions` map of locals)."""
    options = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
    documents = [
        hcl2.loads(path.read_text(encoding="utf-8"), serialization_options=options)
        for path in sorted(INFRA.glob("*.tf"))
    ]
    functions_map: dict[str, Any] = {}
    for document in documents:
        for block in document.get("locals", []):
            functions_map.update(block.get("functions", {}))
    found = set()
    for document in documents:
        for block in document.get("resource", []):
            for body in block.get("google_cloudfunctions2_function", {}).values():
                build = body["build_config"]
                entry_point = (build[0] if isinstance(build, list) else build)["entry_point"]
                if entry_point == "${each.value.entry_point}":
                    found.update(fn["entry_point"] for fn in functions_map.values())
                else:
                    found.add(entry_point)
    return found


# Runs in the fresh interpreter: argv = [bundle dir, site-packages dirs (JSON), targets (JSON)].
_PROBE = r"""
import importlib, json, os, site, sys
from pathlib import Path

bundle = Path(sys.argv[1])
sys.path.insert(0, str(bundle))
known = set(sys.path)
for sitedir in json.loads(sys.argv[2]):
    sys.path.append(sitedir)
    for pth in sorted(os.listdir(sitedir)):
        # .pth files of third-party packages (namespace packages), not the editable install of
        # this repository, which would make the repository's shared/ importable.
        if pth.endswith(".pth") and not pth.startswith("__editable__"):
            site.addpackage(sitedir, pth, known)

import functions_framework
from functions_framework import _function_registry

before = set(sys.modules)
for target, signature in json.loads(sys.argv[3]).items():
    functions_framework.create_app(target=target, source=str(bundle / "main.py"), signature_type=signature)
    assert _function_registry.REGISTRY_MAP.get(target) == signature, (target, signature)
at_import = sorted(set(sys.modules) - before)

for path in sorted(bundle.rglob("*.py")):
    if path.name != "main.py" or path.parent != bundle:
        parts = path.relative_to(bundle).with_suffix("").parts
        importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))

ours = {name: getattr(module, "__file__", None) for name, module in sys.modules.items()
        if name == "shared" or name.startswith("shared.")}
print(json.dumps({"at_import": at_import, "shared": ours}))
"""


@pytest.fixture(scope="module")
def probe(bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """What the fresh interpreter saw: modules loaded by the entry points, and where every
    `shared` module came from."""
    targets = {target: SIGNATURES.get(target, "http") for target in sorted(_deployed_entry_points())}
    site_packages = [path for path in site.getsitepackages() if Path(path).is_dir()]
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-B",  # no __pycache__ in the unpacked bundle
            "-c",
            _PROBE,
            str(bundle_dir),
            json.dumps(site_packages),
            json.dumps(targets),
        ],
        cwd=tmp_path_factory.mktemp("cwd"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return dict(json.loads(result.stdout.strip().splitlines()[-1]))


def test_terraform_deploys_exactly_the_entry_points_this_test_knows() -> None:
    assert _deployed_entry_points() == set(SIGNATURES)


def test_every_entry_point_loads_from_the_bundle_alone(bundle_dir: Path, probe: dict[str, Any]) -> None:
    assert "shared.bootstrap" in probe["shared"]
    for name, file in probe["shared"].items():
        if file is not None:  # a namespace package has no file
            assert Path(file).is_relative_to(bundle_dir), f"{name} was imported from {file}"
    assert len(probe["shared"]) == len(list((bundle_dir / "shared").rglob("*.py")))


def test_local_tools_are_neither_shipped_nor_imported(bundle_dir: Path, probe: dict[str, Any]) -> None:
    names = set(zipfile.ZipFile(bundle_dir.parent / "calsync-functions.zip").namelist())
    assert "main.py" in names
    assert "requirements.txt" in names
    assert not [
        n for n in names if n.startswith(("shared/sandbox", "shared/cli", "tests/", "bench/", "docs/"))
    ]
    assert not [n for n in names if not n.endswith(".py") and n != "requirements.txt"], "data files shipped"
    assert not [m for m in probe["shared"] if m.startswith(LOCAL_TOOLS)]


def test_entry_points_load_no_google_client_library_at_import_time(probe: dict[str, Any]) -> None:
    """Cold start: the SDK clients are built (and imported) on first use, by shared.bootstrap."""
    assert not [m for m in probe["at_import"] if m.startswith(SDK_PREFIXES)]


def test_no_shipped_module_imports_an_unshipped_one(bundle_dir: Path) -> None:
    """Also the imports inside functions (built lazily), which importing a module does not run."""
    shipped = {
        ".".join(p.relative_to(bundle_dir).with_suffix("").parts).removesuffix(".__init__")
        for p in bundle_dir.rglob("*.py")
    }
    for path in bundle_dir.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                if name.split(".")[0] == "shared":
                    assert name in shipped, (
                        f"{path.relative_to(bundle_dir)} imports {name}, which is not shipped"
                    )


def test_bundle_takes_python_sources_only_and_leaves_out_local_tools(tmp_path: Path) -> None:
    for relative in (
        "functions/main.py",
        "requirements.txt",
        "shared/__init__.py",
        "shared/services/jobs.py",
        "shared/services/notes.txt",
        "shared/services/.#jobs.py",
        "shared/services/__pycache__/jobs.cpython-311.py",
        "shared/sandbox/__init__.py",
        "shared/sandbox/sample/tenant.json",
        "shared/cli/__init__.py",
    ):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("x = 1\n", encoding="utf-8")
    names = [name for name, _ in _bundle_script().bundle_entries(tmp_path)]
    assert names == ["main.py", "requirements.txt", "shared/__init__.py", "shared/services/jobs.py"]
