"""The second held-out speech set's manifest (bench/speech_extra.json) and its lay-out:
files come out of real git clones by commit and path, and one whose sha256 differs is
refused."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest

from bench.speech_extra import MANIFEST, check, lay_out, load_manifest
from tests.channels.phone.speech import speech_dir

FIELDS = {"id", "file", "repo", "path", "commit", "license", "reference", "sha256"}


def test_the_manifest_names_source_licence_reference_and_hash_of_every_recording() -> None:
    items = load_manifest()
    assert len(items) >= 50
    assert len({item["id"] for item in items}) == len(items)
    assert len({item["file"] for item in items}) == len(items)
    for item in items:
        assert set(item) >= FIELDS, item["id"]
        assert len(item["commit"]) == 40 and len(item["sha256"]) == 64
        assert item["license"].strip() and item["reference"].strip()
        assert not Path(item["file"]).is_absolute() and ".." not in Path(item["file"]).parts
    # nothing of it is in the first set (28 recordings next to the repository)
    shared = speech_dir() / "items.json"
    if shared.is_file():
        first = {(i["repo"], i["path"]) for i in json.loads(shared.read_text())}
        assert not first & {(i["repo"], i["path"]) for i in items}
    assert MANIFEST.name == "speech_extra.json"


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True)
    return done.stdout.strip()


def test_files_are_laid_out_from_clones_and_a_changed_one_is_refused(tmp_path: Path) -> None:
    clone = tmp_path / "clones" / "someone+speech"
    (clone / "audio").mkdir(parents=True)
    _git(clone, "init", "-q")
    (clone / "audio" / "a.wav").write_bytes(b"RIFF first recording")
    _git(clone, "add", ".")
    _git(clone, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "a")
    commit = _git(clone, "rev-parse", "HEAD")
    # the work tree moves on; the manifest's commit is what is read
    (clone / "audio" / "a.wav").write_bytes(b"RIFF changed later")
    item = {
        "id": "a",
        "file": "set/a.wav",
        "repo": "someone/speech",
        "path": "audio/a.wav",
        "commit": commit,
        "sha256": hashlib.sha256(b"RIFF first recording").hexdigest(),
    }
    dest = tmp_path / "out"
    assert check(dest, [item]) == ["a"]
    assert lay_out(tmp_path / "clones", dest, [item]) == 0
    assert (dest / "set" / "a.wav").read_bytes() == b"RIFF first recording"
    assert check(dest, [item]) == []
    # a file that is not what the manifest hashed is neither written nor accepted
    wrong = {**item, "id": "b", "file": "set/b.wav", "sha256": "0" * 64}
    assert lay_out(tmp_path / "clones", dest, [wrong]) == 1
    assert not (dest / "set" / "b.wav").exists()
    (dest / "set" / "a.wav").write_bytes(b"RIFF tampered")
    assert check(dest, [item]) == ["a"]
    # a source that is not there fails without writing
    missing = {**item, "id": "c", "file": "set/c.wav", "repo": "nobody/none"}
    assert lay_out(tmp_path / "clones", dest, [missing]) == 1


@pytest.mark.parametrize("layout", ["plain", "repo"])
def test_a_clone_may_sit_in_owner_plus_name_or_its_repo_subfolder(
    tmp_path: Path, layout: str
) -> None:
    base = tmp_path / "clones" / "o+n"
    clone = base / "repo" if layout == "repo" else base
    clone.mkdir(parents=True)
    _git(clone, "init", "-q")
    (clone / "x.flac").write_bytes(b"fLaC")
    _git(clone, "add", ".")
    _git(clone, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "x")
    item = {
        "id": "x",
        "file": "x.flac",
        "repo": "o/n",
        "path": "x.flac",
        "commit": _git(clone, "rev-parse", "HEAD"),
        "sha256": hashlib.sha256(b"fLaC").hexdigest(),
    }
    assert lay_out(tmp_path / "clones", tmp_path / "out", [item]) == 0
    assert (tmp_path / "out" / "x.flac").read_bytes() == b"fLaC"
