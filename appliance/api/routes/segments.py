"""``/v1/segments``: how a text would be sent (encoding, parts, characters left)."""

from __future__ import annotations


from fastapi import APIRouter

from appliance.api.deps import ReadKey, ServicesDep
from appliance.api.problems import ApiProblem, FieldError, problem_responses
from appliance.api.schemas import Replacement, SegmentsOut, SegmentsRequest
from appliance.pdu import PduError, UnknownLanguage, parse_languages, plan

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
    _key: ReadKey,
    services: ServicesDep,
) -> SegmentsOut:
    """Look-alike characters (curly quotes, dashes...) are replaced when that keeps the text
    in GSM-7, as the send path does. The national shift tables of `[sms] national_languages`
    (or of the request's `national_languages`) are used when they save parts."""
    names = request.national_languages
    if names is None:
        names = services.settings.sms.national_languages
    try:
        languages = parse_languages(names)
    except UnknownLanguage as exc:
        raise ApiProblem.invalid([FieldError(field="national_languages", detail=str(exc))]) from None
    try:
        p = plan(request.body, national_languages=languages)
    except PduError as exc:
        raise ApiProblem.invalid([FieldError(field="body", detail=str(exc))]) from None
    return SegmentsOut(
        encoding=p.encoding,
        shift_table=p.shift_table,
        locking_shift=p.locking_shift,
        single_shift=p.single_shift,
        parts=p.total,
        default_parts=p.default_parts,
        summary=p.summary,
        chars_left=p.chars_left,
        unit_limit=p.unit_limit,
        units_per_part=list(p.units_per_part),
        replacements=[Replacement(original=a, replacement=b) for a, b in p.replacements],
        texts=list(p.parts),
    )
