"""``/v1/segments``: how a text would be sent (encoding, parts, characters left)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from appliance.api.auth import require
from appliance.api.keys import ApiKey
from appliance.api.problems import ApiProblem, FieldError, problem_responses
from appliance.api.schemas import Replacement, SegmentsOut, SegmentsRequest
from appliance.pdu import PduError, plan

__all__ = ["router"]

router = APIRouter(prefix="/v1/segments", tags=["segments"])


@router.post(
    "",
    response_model=SegmentsOut,
    summary="Plan the SMS parts of a text",
    responses=problem_responses(401, 403, 422),
)
def segments(
    request: SegmentsRequest,
    _key: Annotated[ApiKey, Depends(require("read"))],
) -> SegmentsOut:
    """Look-alike characters (curly quotes, dashes...) are replaced when that keeps the text
    in GSM-7, as the send path does."""
    try:
        p = plan(request.body)
    except PduError as exc:
        raise ApiProblem.invalid([FieldError(field="body", detail=str(exc))]) from None
    return SegmentsOut(
        encoding=p.encoding,
        shift_table=p.shift_table,
        parts=p.total,
        chars_left=p.chars_left,
        unit_limit=p.unit_limit,
        units_per_part=list(p.units_per_part),
        replacements=[Replacement(original=a, replacement=b) for a, b in p.replacements],
        texts=list(p.parts),
    )
