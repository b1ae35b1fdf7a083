"""Build the ONE source bundle every calsync function is deployed from.

Layout inside the zip (what the Cloud Functions Python runtime expects at the root):

    main.py            <- functions/main.py (every entry point)
    requirements.txt   <- requirements.txt (pinned runtime dependencies)
    shared/...         <- shared/ (the application package), without caches

The zip is reproducible: entries are sorted, timestamps and permissions fixed, so the same
sources always give the same bytes and so the same SHA-256, which Terraform uses to name the
uploaded object (infra/bundle.tf). Standard library only.

    python infra/bundle.py [--out .bundle/calsync-functions.zip]   # prints the SHA-256
"""

from __future__ import annotations

import argparse
import hashlib
import zipfile
from collections.abc import Iterator
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO_ROOT / ".bundle" / "calsync-functions.zip"
_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry
_SKIPPED_DIRS = frozenset({"__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache"})
_SKIPPED_SUFFIXES = (".pyc", ".pyo")


def bundle_entries(root: Path = REPO_ROOT) -> Iterator[tuple[str, Path]]:
    """Yield (name in the zip, source file) for every file of the bundle, sorted by name."""
    entries = {
        "main.py": root / "functions" / "main.py",
        "requirements.txt": root / "requirements.txt",
    }
    for path in (root / "shared").rglob("*"):
        relative = path.relative_to(root)
        if not path.is_file() or _SKIPPED_DIRS.intersection(relative.parts):
            continue
        if path.name.endswith(_SKIPPED_SUFFIXES):
            continue
        entries[relative.as_posix()] = path
    for name in sorted(entries):
        if not entries[name].is_file():
            raise FileNotFoundError(f"bundle source missing: {entries[name]}")
        yield name, entries[name]


def build_bundle(out: Path = DEFAULT_OUT, root: Path = REPO_ROOT) -> str:
    """Write the bundle to `out` and return its SHA-256 (hex).

    Raises FileNotFoundError when functions/main.py or requirements.txt is missing.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w") as archive:
        for name, path in bundle_entries(root):
            info = zipfile.ZipInfo(name, date_time=_FIXED_TIME)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, path.read_bytes(), compresslevel=9)
    tmp.replace(out)
    return hashlib.sha256(out.read_bytes()).hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="zip to write")
    args = parser.parse_args()
    digest = build_bundle(args.out)
    print(f"{args.out} sha256={digest}")


if __name__ == "__main__":
    main()
