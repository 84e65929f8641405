"""The second held-out speech set: recordings of real people that nobody here looked at.

`bench/speech_extra.json` lists each recording: where it comes from (a public
repository, the path in it and the commit), its licence, its reference transcript
(and where the reference comes from) and the sha256 of the file. The audio itself
is never committed; it is laid out in a cache folder outside the repository:

    .venv/bin/python bench/speech_extra.py lay-out --clones DIR --to /work/speech-extra

where DIR holds a bare or ordinary git clone of each source repository, named
`owner+name` (for example `DIR/coqui-ai+TTS`, or `DIR/coqui-ai+TTS/repo`). Each file
is read with `git show COMMIT:PATH` (no work tree needed), written to
`--to/<file>`, and checked against the manifest's sha256; a file that differs is
refused. `check --to DIR` verifies a folder laid out by other means (any copy of
the same files will do: the sha256 is what identifies them).

`bench/stt_accuracy.py --extra DIR` then measures on these recordings.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).with_name("speech_extra.json")


def load_manifest(path: Path = MANIFEST) -> list[dict[str, Any]]:
    """The manifest's items (id, file, repo, path, commit, licence, reference, sha256, ...)."""
    items: list[dict[str, Any]] = json.loads(path.read_text())["items"]
    return items


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _clone_dir(clones: Path, repo: str) -> Path:
    base = clones / repo.replace("/", "+")
    return base / "repo" if (base / "repo").is_dir() else base


def lay_out(clones: Path, dest: Path, items: list[dict[str, Any]]) -> int:
    """Write every item from its source clone into `dest`; return how many failed."""
    failed = 0
    for item in items:
        repo_dir = _clone_dir(clones, item["repo"])
        spec = f"{item['commit']}:{item['path']}"
        try:
            data = subprocess.run(
                ["git", "-C", str(repo_dir), "show", spec], check=True, capture_output=True
            ).stdout
        except (subprocess.CalledProcessError, FileNotFoundError) as exc:
            print(f"{item['id']}: cannot read {item['repo']} {spec}: {exc}", file=sys.stderr)
            failed += 1
            continue
        if sha256_of(data) != item["sha256"]:
            print(f"{item['id']}: sha256 differs from the manifest; not written", file=sys.stderr)
            failed += 1
            continue
        target = dest / item["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
    return failed


def check(dest: Path, items: list[dict[str, Any]]) -> list[str]:
    """Ids whose file in `dest` is missing or differs from the manifest's sha256."""
    bad = []
    for item in items:
        target = dest / item["file"]
        if not target.is_file() or sha256_of(target.read_bytes()) != item["sha256"]:
            bad.append(item["id"])
    return bad


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    lay = sub.add_parser("lay-out", help="copy the files out of local git clones")
    lay.add_argument("--clones", required=True, type=Path)
    lay.add_argument("--to", required=True, type=Path)
    chk = sub.add_parser("check", help="verify a laid-out folder against the manifest")
    chk.add_argument("--to", required=True, type=Path)
    args = parser.parse_args(argv)
    items = load_manifest()
    if args.command == "lay-out":
        failed = lay_out(args.clones, args.to, items)
        print(f"{len(items) - failed} of {len(items)} files laid out in {args.to}")
        return 1 if failed else 0
    bad = check(args.to, items)
    print(f"{len(items) - len(bad)} of {len(items)} files match" + (f"; bad: {bad}" if bad else ""))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
