"""Multipart uploads read as a stream under a size limit; file parts go to disk, never whole in memory.

Starlette's multipart parser (python-multipart) spools each file part to a temporary file (in
memory up to 1 MiB, then on disk); the request stream it reads is cut off with a 413 as soon as it
passes the limit, and then every spooled file is closed (deleted).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

from fastapi import Request
from starlette.datastructures import FormData, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from wadispatch.api.errors import ApiError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
COPY_CHUNK = 1024 * 1024


async def read_form(request: Request, *, max_bytes: int, max_field_bytes: int, max_parts: int) -> FormData:
    """The multipart form of ``request``; 413 past ``max_bytes`` (checked while reading), 400 if
    malformed, 415 if not ``multipart/form-data``. The caller closes it (``await form.close()``)."""
    content_type = request.headers.get("content-type", "")
    if not content_type.lower().startswith("multipart/form-data"):
        message = "send multipart/form-data (curl -F file=@customers.csv -F template=@template.json ...)"
        raise ApiError(415, "unsupported_media_type", message)
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > max_bytes):
        raise ApiError(413, "body_too_large", f"the upload is larger than {max_bytes} bytes")
    parser = MultiPartParser(
        request.headers,
        _limited(request, max_bytes),
        max_files=max_parts,
        max_fields=max_parts,
        max_part_size=max_field_bytes,
    )
    try:
        return await parser.parse()
    except MultiPartException as exc:
        raise ApiError(400, "malformed_form", f"the multipart body cannot be read: {exc.message}") from None


async def _limited(request: Request, max_bytes: int) -> AsyncIterator[bytes]:
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise ApiError(413, "body_too_large", f"the upload is larger than {max_bytes} bytes")
        yield chunk


def safe_filename(filename: str | None, default: str) -> str:
    """The last part of an uploaded file's name, with only letters, digits, ``.``, ``_`` and ``-``."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = _UNSAFE.sub("_", name).strip(".")[-100:]
    return name or default


def save_upload(upload: UploadFile, directory: Path, default_name: str) -> Path:
    """Copy an uploaded file into ``directory`` under its own (safe) name; blocking, run it in a thread."""
    path = directory / safe_filename(upload.filename, default_name)
    upload.file.seek(0)
    with path.open("wb") as out:
        shutil.copyfileobj(upload.file, out, COPY_CHUNK)
    return path
