"""Attachments of inbound mail, stored on disk under DATA_DIR/attachments.

Files are named by their SHA-256 (the same file sent twice is stored once); the
name, type and size travel on the message as `Attachment` metadata, the path
relative to DATA_DIR.
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


def save_attachments(data_dir: Path, found: tuple[MailAttachment, ...]) -> tuple[Attachment, ...]:
    """Write each attachment (atomically, fsynced) and return its metadata."""
    folder = data_dir / ATTACHMENTS_DIR
    saved = []
    for item in found[:MAX_ATTACHMENTS]:
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


__all__ = ["ATTACHMENTS_DIR", "save_attachments"]
