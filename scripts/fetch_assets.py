"""Rebuild the dashboard's and the API docs' vendored assets from pinned npm packages.

    python scripts/fetch_assets.py [--dest src/model_manager/api/static/vendor] [--cache DIR]

Runs ``npm pack NAME@VERSION`` for each package below, copies only the files the pages load (and each
package's licence files next to them) into ``--dest``, and writes ``MANIFEST.json`` there: version,
licence, the tarball's integrity hash, and each file's size raw and gzipped with its sha256. The
package is then installed with these files as they are: nothing is built at install time.

ReDoc stays on 2.x: 3.x ships its standalone bundle as an ES module, which FastAPI's ``get_redoc_html``
page cannot load. uPlot ships as its minified IIFE build (``window.uPlot``); its ES module build is
unminified and twice the size over the wire.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEST = REPO / "src" / "model_manager" / "api" / "static" / "vendor"

# name, version, target dir, {file in the package: file in the target dir}
PACKAGES: list[tuple[str, str, str, dict[str, str]]] = [
    (
        "swagger-ui-dist",
        "5.35.0",
        "swagger-ui",
        {
            "swagger-ui-bundle.js": "swagger-ui-bundle.js",
            "swagger-ui-bundle.js.LICENSE.txt": "swagger-ui-bundle.js.LICENSE.txt",
            "swagger-ui.css": "swagger-ui.css",
            "favicon-32x32.png": "favicon-32x32.png",
            "LICENSE": "LICENSE",
            "NOTICE": "NOTICE",
        },
    ),
    (
        "redoc",
        "2.5.4",
        "redoc",
        {
            "bundles/redoc.standalone.js": "redoc.standalone.js",
            "bundles/redoc.standalone.js.LICENSE.txt": "redoc.standalone.js.LICENSE.txt",
            "LICENSE": "LICENSE",
        },
    ),
    (
        "uplot",
        "1.6.32",
        "uplot",
        {
            "dist/uPlot.iife.min.js": "uPlot.iife.min.js",
            "dist/uPlot.min.css": "uPlot.min.css",
            "LICENSE": "LICENSE",
        },
    ),
]


def sizes(data: bytes) -> dict[str, object]:
    return {
        "bytes": len(data),
        "gzip9_bytes": len(gzip.compress(data, 9, mtime=0)),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def npm_pack(name: str, version: str, cache: Path) -> tuple[Path, dict[str, Any]]:
    """The package's tarball in ``cache`` (packed by npm unless it is already there) and npm's report."""
    cache.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        ["npm", "pack", f"{name}@{version}", "--json", "--pack-destination", str(cache)],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    info: dict[str, Any] = json.loads(out)[0]
    return cache / info["filename"], info


def read_member(tgz: Path, path: str) -> bytes:
    with tarfile.open(tgz) as tar:
        member = tar.extractfile(f"package/{path}")
        if member is None:
            raise FileNotFoundError(f"{tgz.name}: package/{path}")
        return member.read()


def build(dest: Path, cache: Path) -> dict[str, Any]:
    packages: dict[str, Any] = {}
    for name, version, target, files in PACKAGES:
        tgz, info = npm_pack(name, version, cache)
        meta = json.loads(read_member(tgz, "package.json"))
        out_dir = dest / target
        if out_dir.exists():
            shutil.rmtree(out_dir)
        out_dir.mkdir(parents=True)
        listed: dict[str, Any] = {}
        for source, name_here in files.items():
            data = read_member(tgz, source)
            (out_dir / name_here).write_bytes(data)
            listed[name_here] = sizes(data)
        packages[name] = {
            "version": meta["version"],
            "license": meta.get("license"),
            "tarball": tgz.name,
            "integrity": info.get("integrity"),
            "dir": target,
            "files": listed,
        }
    manifest = {"packages": packages}
    (dest / "MANIFEST.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dest", type=Path, default=DEST)
    parser.add_argument(
        "--cache", type=Path, default=None, help="keep the tarballs here (default: a temp dir)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        manifest = build(args.dest, args.cache or Path(tmp))
    for name, entry in manifest["packages"].items():
        print(f"{name} {entry['version']} ({entry['license']})")
        for file_name, s in entry["files"].items():
            print(f"  {file_name:36} {s['bytes']:>9} B raw  {s['gzip9_bytes']:>8} B gzip -9")


if __name__ == "__main__":
    main()
