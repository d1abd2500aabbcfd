"""Campaign routes (``/v1/campaigns``): bulk sends from a CSV or JSONL upload and a template.

Thin over :mod:`wadispatch.campaigns.api`, the same code as ``wadispatch campaign ...``: the upload is
streamed to a temporary file (at most ``WADISPATCH_API_MAX_UPLOAD_BYTES``), read into the ledger in
a worker thread, and answered 202 once every row is recorded and the fan-out task is queued (what
``campaign send --detach`` does). A bad template, provider, field or file header is a 422 listing
every ``{path, rule}``, and then nothing is recorded. Template paths are named after the ``template``
field (``template.action.buttons[0].reply.title``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Annotated, Any, cast

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile
from wadispatch import jsonread
from wadispatch.api.auth import require_api_key
from wadispatch.api.campaign_models import (
    CampaignAccepted,
    CampaignCancelled,
    CampaignFields,
    CampaignList,
    CampaignOut,
    CampaignProgressOut,
)
from wadispatch.api.errors import ApiError
from wadispatch.api.models import ERROR_RESPONSES, ErrorBody
from wadispatch.api.uploads import read_form, safe_filename, save_upload
from wadispatch.campaigns import api
from wadispatch.campaigns.fallback import CampaignFallback
from wadispatch.campaigns.pool import MAX_POOL_SIZE, check_senders
from wadispatch.campaigns.reader import FileError, FileFormat, detect_format
from wadispatch.campaigns.schedule import campaign_timing
from wadispatch.errors import FieldError, MessageValidationError
from wadispatch.ledger import Ledger, utcnow
from wadispatch.messages import field_errors
from wadispatch.settings import ProviderName, Settings

router = APIRouter(prefix="/v1/campaigns", tags=["campaigns"], dependencies=[Depends(require_api_key)])

FILE_PARTS = ("file", "template")
#: Optional parts read as JSON, like the template (file or text).
JSON_PARTS = ("fallback",)
POOL_FIELD = "senders"
#: The form's parts at most: the file, the template and the fallback, every text field once, and
#: a pool's senders given one part each.
MAX_PARTS = 16 + MAX_POOL_SIZE
REPORT_CHUNK = 64 * 1024

_NOT_FOUND = {404: {"model": ErrorBody, "description": "No such campaign."}}
_AUTH = {401: ERROR_RESPONSES[401]}


def _upload_schema() -> dict[str, Any]:
    fields = CampaignFields.model_json_schema()
    properties = {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "The recipients: CSV with a header row, or JSONL (.csv, .jsonl, .ndjson).",
        },
        "template": {
            "type": "string",
            "format": "binary",
            "description": "JSON: the interactive object with {column} placeholders (file or text).",
        },
        "fallback": {
            "type": "string",
            "format": "binary",
            "description": "Optional JSON (file or text): an approved template sent instead when a "
            "recipient's 24-hour window is closed (Meta only): `name`, `language`, `body_parameters`, "
            "`quick_replies` (each a reply id of the template), with {column} placeholders.",
        },
        **fields["properties"],
    }
    schema = {"type": "object", "properties": properties, "required": [*FILE_PARTS, *fields["required"]]}
    return {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": schema}}}}


@router.post(
    "",
    status_code=202,
    response_model=CampaignAccepted,
    responses={
        **_AUTH,
        400: {"model": ErrorBody, "description": "The multipart body cannot be read."},
        413: {"model": ErrorBody, "description": "Larger than WADISPATCH_API_MAX_UPLOAD_BYTES."},
        415: {"model": ErrorBody, "description": "Not multipart/form-data."},
        422: {"model": ErrorBody, "description": "Bad template, provider, field or file header."},
    },
    openapi_extra=_upload_schema(),
)
async def create_campaign(request: Request) -> CampaignAccepted:
    """Start a campaign: 202 once every row of the file is recorded and its sends are queued."""
    settings: Settings = request.app.state.settings
    form = await read_form(
        request,
        max_bytes=settings.api_max_upload_bytes,
        max_field_bytes=settings.api_max_body_bytes,
        max_parts=MAX_PARTS,
    )
    try:
        return await run_in_threadpool(_start, form, settings, request.app.state.ledger)
    finally:
        await form.close()


@router.get("", response_model=CampaignList, responses=_AUTH)
async def list_campaigns(
    request: Request, limit: Annotated[int, Query(ge=1, le=1000, description="At most this many.")] = 100
) -> CampaignList:
    """The latest campaigns, newest first."""
    records = await run_in_threadpool(api.list_campaigns, ledger=request.app.state.ledger, limit=limit)
    return CampaignList(campaigns=[CampaignOut.of(record) for record in records])


@router.get("/{campaign_id}", response_model=CampaignProgressOut, responses={**_AUTH, **_NOT_FOUND})
async def get_progress(campaign_id: str, request: Request) -> CampaignProgressOut:
    """Rows, messages per state and failure reason, start, end, rates, the sender's limit, 429s and ETA."""
    state = request.app.state
    progress = await _call(api.progress, campaign_id, ledger=state.ledger, settings=state.settings)
    return CampaignProgressOut.of_progress(progress)


@router.post("/{campaign_id}/pause", response_model=CampaignOut, responses={**_AUTH, **_NOT_FOUND})
async def pause(campaign_id: str, request: Request) -> CampaignOut:
    """Stop sending (sends in flight finish). Safe to repeat."""
    return CampaignOut.of(await _call(api.pause, campaign_id, ledger=request.app.state.ledger))


@router.post("/{campaign_id}/resume", response_model=CampaignOut, responses={**_AUTH, **_NOT_FOUND})
async def resume(campaign_id: str, request: Request) -> CampaignOut:
    """Send again after a pause, and queue what is pending again. Safe to repeat."""
    return CampaignOut.of(await _call(api.resume, campaign_id, ledger=request.app.state.ledger))


@router.post("/{campaign_id}/cancel", response_model=CampaignCancelled, responses={**_AUTH, **_NOT_FOUND})
async def cancel(campaign_id: str, request: Request) -> CampaignCancelled:
    """End the campaign: what is not sent yet ends `failed`, reason `cancelled`. Safe to repeat.

    Answers once sends in flight have finished (up to 30 s) and what they left pending is swept.
    """
    ledger = request.app.state.ledger
    cancelled = await _call(api.cancel, campaign_id, ledger=ledger)
    campaign = await _call(api.get_campaign, campaign_id, ledger=ledger)
    return CampaignCancelled(**CampaignOut.of(campaign).model_dump(), cancelled=cancelled)


@router.get(
    "/{campaign_id}/report",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One line per row of the campaign's file."},
        **_AUTH,
        **_NOT_FOUND,
    },
)
async def report(campaign_id: str, request: Request) -> StreamingResponse:
    """The CSV report (`wadispatch campaign report`): one line per row of the file, in file order."""
    handle = await _call(_write_report, campaign_id, request.app.state.ledger)
    headers = {"Content-Disposition": f'attachment; filename="campaign-{safe_filename(campaign_id, "")}.csv"'}
    return StreamingResponse(_chunks(handle), media_type="text/csv; charset=utf-8", headers=headers)


# --- helpers ---------------------------------------------------------------------------------------


async def _call(function: Any, *args: Any, **kwargs: Any) -> Any:
    """Run a blocking campaign call in a thread; an unknown id is a 404."""
    try:
        return await run_in_threadpool(function, *args, **kwargs)
    except api.UnknownCampaign as exc:
        raise ApiError(404, "not_found", f"no campaign {exc}") from None


def _start(form: FormData, settings: Settings, ledger: Ledger) -> CampaignAccepted:
    """Check the form, copy the file to a private directory and read it into a campaign (blocking)."""
    upload, template, fields, file_format, fallback = _checked(form, settings)
    published: list[bool] = []

    def dispatch(campaign_id: str, first_row: int, last_row: int | None) -> bool:
        published.append(api.dispatch_fanout(campaign_id, first_row, last_row))
        return published[-1]

    with tempfile.TemporaryDirectory(prefix="wadispatch-upload-") as directory:
        source = save_upload(upload, Path(directory), f"recipients.{file_format}")
        try:
            campaign = api.create_campaign(
                source,
                template,
                provider=fields.provider,
                sender=fields.sender,
                senders=fields.senders,
                name=fields.name,
                phone_column=fields.phone_column,
                region=fields.region,
                file_format=file_format,
                ledger=ledger,
                settings=settings,
                dispatch=dispatch,
                fallback=fallback,
                start_at=fields.start_at,
                send_window=fields.send_window,
                timezone=fields.timezone,
                valid_for_seconds=fields.valid_for_seconds,
                expires_at=fields.expires_at,
            )
        except MessageValidationError as exc:
            raise _invalid(_template_paths(exc.errors)) from None
        except api.CampaignInputError as exc:
            raise _invalid([_input_error(str(exc))]) from None
    return CampaignAccepted(**CampaignOut.of(campaign).model_dump(), queued=all(published))


def _checked(
    form: FormData, settings: Settings
) -> tuple[UploadFile, dict[str, Any], CampaignFields, FileFormat, dict[str, Any] | None]:
    """The form's parts, or a 422 listing every problem (template and fallback rules included)."""
    errors: list[FieldError] = []
    upload = _file_part(form, errors)
    template = _template_part(form, settings.api_max_body_bytes, errors)
    fallback = _fallback_part(form, settings.api_max_body_bytes, errors)
    fields = _text_fields(form, errors)
    file_format: FileFormat | None = None
    if fields is not None and upload is not None:
        file_format = fields.format or _format_of(upload.filename, errors)
    if fields is not None and template is not None:
        try:
            checked, _, _ = check_senders(
                template, provider=fields.provider, sender=fields.sender, senders=fields.senders
            )
            if fallback is not None:
                provider = cast(ProviderName, fields.provider)  # the template's check named it
                CampaignFallback.parse(fallback, checked, provider=provider)
        except MessageValidationError as exc:
            errors.extend(_template_paths(exc.errors))
    if fields is not None:
        _, timing_errors = campaign_timing(
            start_at=fields.start_at,
            send_window=fields.send_window,
            time_zone_name=fields.timezone,
            valid_for_seconds=fields.valid_for_seconds,
            expires_at=fields.expires_at,
            now=utcnow(),
            default_zone=settings.default_timezone,
        )
        errors.extend(timing_errors)
    if errors or upload is None or template is None or fields is None or file_format is None:
        raise _invalid(errors)
    return upload, template, fields, file_format, fallback


def _file_part(form: FormData, errors: list[FieldError]) -> UploadFile | None:
    parts = form.getlist("file")
    if len(parts) == 1 and isinstance(parts[0], UploadFile):
        return parts[0]
    if not parts:
        errors.append(FieldError("file", "required: the recipients file (-F file=@customers.csv)"))
    elif len(parts) > 1:
        errors.append(FieldError("file", "give one file"))
    else:
        errors.append(FieldError("file", "must be a file part (-F file=@customers.csv)"))
    return None


def _template_part(form: FormData, max_bytes: int, errors: list[FieldError]) -> dict[str, Any] | None:
    parts = form.getlist("template")
    if len(parts) != 1:
        errors.append(FieldError("template", "required" if not parts else "give one template"))
        return None
    read, template = _json_part("template", parts[0], max_bytes, errors)
    if not read:
        return None
    if isinstance(template, dict) and "interactive" in template and "type" not in template:
        template = template["interactive"]  # a send request's shape is fine too, as for the CLI
    if not isinstance(template, dict):
        errors.append(FieldError("template", "must be a JSON object: the interactive object"))
        return None
    return template


def _fallback_part(form: FormData, max_bytes: int, errors: list[FieldError]) -> dict[str, Any] | None:
    parts = form.getlist("fallback")
    if not parts:
        return None
    if len(parts) > 1:
        errors.append(FieldError("fallback", "give one fallback template"))
        return None
    read, fallback = _json_part("fallback", parts[0], max_bytes, errors)
    if not read:
        return None
    if not isinstance(fallback, dict):
        errors.append(FieldError("fallback", "must be a JSON object: name, language, body_parameters..."))
        return None
    return fallback


def _json_part(name: str, part: Any, max_bytes: int, errors: list[FieldError]) -> tuple[bool, Any]:
    """``(True, value)``: a part's JSON (a file or a text); ``(False, None)`` with the error added."""
    raw = part.file.read(max_bytes + 1) if isinstance(part, UploadFile) else part.encode()
    if len(raw) > max_bytes:
        errors.append(FieldError(name, f"at most {max_bytes} bytes"))
        return False, None
    try:
        return True, jsonread.loads(raw)
    except jsonread.JsonInputError as exc:
        where = "" if exc.path == "$" else f"at {exc.path}: "
        errors.append(FieldError(name, where + exc.rule))
        return False, None


def _text_fields(form: FormData, errors: list[FieldError]) -> CampaignFields | None:
    values: dict[str, Any] = {}
    not_text = (*FILE_PARTS, *JSON_PARTS)
    for key in dict.fromkeys(key for key, _ in form.multi_items() if key not in not_text):
        parts = form.getlist(key)
        if key == POOL_FIELD:
            values[key] = _pool_parts(parts, errors)
        elif len(parts) > 1:
            errors.append(FieldError(key, "given more than once"))
        elif not isinstance(parts[0], str):
            errors.append(FieldError(key, "must be a text field, not a file"))
        elif parts[0].strip():
            values[key] = parts[0].strip()
    try:
        return CampaignFields.model_validate(values)
    except ValidationError as exc:
        errors.extend(field_errors(exc))
        return None


def _pool_parts(parts: list[Any], errors: list[FieldError]) -> list[str]:
    """The ``senders`` parts: one per sender, or comma-separated; none but blanks is an empty pool."""
    if not all(isinstance(part, str) for part in parts):
        errors.append(FieldError(POOL_FIELD, "must be text fields, not files"))
        return []
    if not any(part.strip() for part in parts):
        return []
    return [handle.strip() for part in parts for handle in part.split(",")]


def _format_of(filename: str | None, errors: list[FieldError]) -> FileFormat | None:
    try:
        return detect_format(Path(safe_filename(filename, "recipients")))
    except FileError:
        rule = f"cannot tell csv or jsonl from the name {filename!r}: give format=csv or format=jsonl"
        errors.append(FieldError("format", rule))
        return None


def _template_paths(errors: list[FieldError]) -> list[FieldError]:
    """The validator names the template ``interactive``; here it is the ``template`` field."""
    renamed = []
    for error in errors:
        path = error.path
        if path == "interactive" or path.startswith(("interactive.", "interactive[")):
            path = "template" + path.removeprefix("interactive")
        renamed.append(FieldError(path, error.rule))
    return renamed


def _input_error(message: str) -> FieldError:
    """A :class:`CampaignInputError` as a field error: the region's, or the file's (its header)."""
    if message.startswith("region: "):
        return FieldError("region", message.removeprefix("region: "))
    return FieldError("file", message)


def _invalid(errors: list[FieldError]) -> ApiError:
    return ApiError(422, "invalid_request", f"{len(errors)} problem(s)", errors)


def _write_report(campaign_id: str, ledger: Ledger) -> IO[str]:
    """The report in a temporary file (deleted once closed), rewound; blocking."""
    handle = tempfile.TemporaryFile("w+", encoding="utf-8", newline="")  # noqa: SIM115 (closed by _chunks)
    try:
        api.report(campaign_id, handle, ledger=ledger)
        handle.seek(0)
    except BaseException:
        handle.close()
        raise
    return handle


def _chunks(handle: IO[str]) -> Iterator[bytes]:
    """The report's bytes (Starlette iterates this in a thread), closing the file at the end."""
    with handle:
        while chunk := handle.read(REPORT_CHUNK):
            yield chunk.encode()
