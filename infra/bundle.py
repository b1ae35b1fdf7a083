"""Build the ONE source bundle every calsync function is deployed from.

This file is the one definition of what ships (`SOURCES` minus `EXCLUDED`); Terraform uploads
the zip it writes (infra/bundle.tf), and tests/unit/test_bundle.py imports every entry point
from that zip's files alone. Layout inside the zip (what the Cloud Functions Python runtime
expects at the root):

    main.py            <- functions/main.py (every entry point)
    requirements.txt   <- requirements.txt (pinned runtime dependencies)
    shared/...         <- the Python sources of shared/ (the application package), without the
                          local tools production never imports: shared/sandbox/ (stand-ins,
                          emulators, sample data) and shared/cli/

Only `.py` files are taken from directories (the application has no data files), so caches,
editor files and anything else untracked in a checkout never change the bundle. The zip is
reproducible: entries are sorted, timestamps and permissions fixed, so the same sources always
give the same bytes and so the same SHA-256, which Terraform uses to name the uploaded object.
Standard library only.

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

# What ships: (name in the zip, path in the repository). A directory ships its `.py` files.
SOURCES = (
    ("main.py", "functions/main.py"),
    ("requirements.txt", "requirements.txt"),
    ("shared", "shared"),
)
# Directories (repository paths) under SOURCES that production never imports: left out.
EXCLUDED = ("shared/sandbox", "shared/cli")


def bundle_entries(root: Path = REPO_ROOT) -> Iterator[tuple[str, Path]]:
    """Yield (name in the zip, source file) for every file of the bundle, sorted by name.

    Raises FileNotFoundError when a file named in SOURCES is missing."""
    entries: dict[str, Path] = {}
    for name, source in SOURCES:
        path = root / source
        if not path.is_dir():
            entries[name] = path
            continue
        for file in path.rglob("*.py"):
            relative = file.relative_to(root)
            if file.is_file() and not _is_skipped(relative):
                entries[f"{name}/{file.relative_to(path).as_posix()}"] = file
    for name in sorted(entries):
        if not entries[name].is_file():
            raise FileNotFoundError(f"bundle source missing: {entries[name]}")
        yield name, entries[name]


def _is_skipped(relative: Path) -> bool:
    """Excluded directories, caches, and hidden files (editor locks and the like)."""
    if any(relative.is_relative_to(directory) for directory in EXCLUDED):
        return True
    return "__pycache__" in relative.parts or any(part.startswith(".") for part in relative.parts)


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
