"""Attachments of inbound mail, stored on disk under DATA_DIR/attachments.

Files are named by their SHA-256 (the same file sent twice is stored once); the
name, type and size travel on the message as `Attachment` metadata, the path
relative to DATA_DIR. A file over GATEWAY_EMAIL_MAX_ATTACHMENT_BYTES is not
written: it is recorded with `refused="too_large"` (name, type, size, no path),
so the mail's text is kept and the customer and the rep can be told.
"""

from __future__ import annotations

import hashlib
import mimetypes
import os
from pathlib import Path

from channels.email.codec import MailAttachment
from gateway.models import Attachment

ATTACHMENTS_DIR = "attachments"
MAX_ATTACHMENTS = 50
TOO_LARGE = "too_large"


def save_attachments(
    data_dir: Path, found: tuple[MailAttachment, ...], *, max_bytes: int
) -> tuple[Attachment, ...]:
    """Write each attachment up to `max_bytes` (atomically, fsynced) and return the
    metadata of all of them, the larger ones marked refused."""
    folder = data_dir / ATTACHMENTS_DIR
    saved = []
    for item in found[:MAX_ATTACHMENTS]:
        if item.size > max_bytes:
            saved.append(
                Attachment(
                    content_type=item.content_type[:200],
                    filename=item.filename[:300] if item.filename else None,
                    size=item.size,
                    refused=TOO_LARGE,
                )
            )
            continue
        digest = hashlib.sha256(item.data).hexdigest()
        ext = mimetypes.guess_extension(item.content_type) or ".bin"
        path = folder / digest[:2] / f"{digest}{ext}"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(path.suffix + ".tmp")
            with open(tmp, "wb") as fh:
                fh.write(item.data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        saved.append(
            Attachment(
                path=str(path.relative_to(data_dir)),
                content_type=item.content_type[:200],
                filename=item.filename[:300] if item.filename else None,
                size=item.size,
            )
        )
    return tuple(saved)


def refusal_note(refused: tuple[Attachment, ...], max_bytes: int) -> str:
    """What the customer is told about attachments that were not kept ("" for none)."""
    if not refused:
        return ""
    names = ", ".join(f'"{a.filename or "unnamed"}" ({_size(a.size or 0)})' for a in refused)
    one = len(refused) == 1
    which, were = ("your attachment", "it was") if one else ("your attachments", "they were")
    return (
        f"P.S. We couldn't accept {which} {names}: attachments of up to {_size(max_bytes)}"
        f" are accepted, and {were} not kept. We did receive your message. Please send a"
        " smaller file or a link to it."
    )


def _size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    return f"{max(1, round(n / 1024))} KB"


__all__ = ["ATTACHMENTS_DIR", "TOO_LARGE", "refusal_note", "save_attachments"]
