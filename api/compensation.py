"""HTTP for the water-environment compensation calculator (跨界断面考核补偿).

``POST /v1/compensation/calculate`` (multipart: ``district``, ``month``, ``samples``, optional
``sections`` and ``options``) answers with the month's amounts per section and unit, the rule set and
every option; ``POST /v1/compensation/report`` renders the same as bilingual HTML or PDF;
``POST /v1/compensation/allocate`` is 密云's annual allocation; ``GET /v1/compensation/rules`` and
``GET /v1/compensation/sections`` show the rule sets and the shipped section tables. Bad input is a
422 naming the row; an upload over ``ZONING_MAX_UPLOAD_BYTES`` a 413.
"""

from __future__ import annotations

import json
from datetime import date

from fastapi import APIRouter, Depends, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse, JSONResponse, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api.errors import PayloadTooLargeError
from geo.compensation.allocate import allocate
from geo.compensation.calculate import calculate_from_csv
from geo.compensation.rules import CompensationInputError, load_rule_sets, rule_set_for, standard_summary
from geo.compensation.sections import shipped_sections, tn_table
from maps.compensation_report import report_html, report_pdf

router = APIRouter(prefix="/v1/compensation", tags=["compensation"])

_ERROR = {"content": {"application/json": {"schema": {
    "type": "object", "properties": {"detail": {}}, "required": ["detail"]}}}}
ERRORS = {400: {**_ERROR, "description": "Malformed request body (not multipart / not JSON)"},
          413: {**_ERROR, "description": "Upload over ZONING_MAX_UPLOAD_BYTES"},
          422: {**_ERROR, "description": "Bad input: the message names the row, column or option"}}
CALC_FIELDS_DOC = {
    "district": "District adcode: 110108 海淀, 110118 密云 (110109 门头沟 is cited without rules)",
    "month": "YYYY-MM; the rule set in force on the month's first day is used",
    "samples": "CSV section_id,date,CODMn,COD,NH3N,TP,TN,dry (mg/L; UTF-8 or GB18030)",
    "sections": "Sections CSV (required for 海淀; optional for 密云, whose 39 sections ship with the service)",
    "options": 'JSON object of named options, e.g. {"natural_gap": "base", "max_sections": "S02"}',
}


async def _read(upload: UploadFile | None, request: Request, what: str) -> bytes | None:
    if upload is None:
        return None
    limit = request.app.state.settings.max_upload_bytes
    data = await upload.read(limit + 1)
    if len(data) > limit:
        raise PayloadTooLargeError(f"{what}: larger than {limit} bytes (ZONING_MAX_UPLOAD_BYTES) / 文件过大")
    return data


def _options(text: str | None) -> dict:
    if not text or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise CompensationInputError(f"options: not JSON ({exc.msg}) / 选项应为 JSON 对象") from None
    if not isinstance(value, dict):
        raise CompensationInputError("options: must be a JSON object of option names to values")
    return value


async def calculation_input(
    request: Request,
    district: str = Form(..., description=CALC_FIELDS_DOC["district"]),
    month: str = Form(..., description=CALC_FIELDS_DOC["month"]),
    samples: UploadFile = File(..., description=CALC_FIELDS_DOC["samples"]),
    sections: UploadFile | None = File(None, description=CALC_FIELDS_DOC["sections"]),
    options: str | None = Form(None, description=CALC_FIELDS_DOC["options"]),
) -> dict:
    """The calculation answer for the multipart fields shared by /calculate and /report."""
    samples_data = await _read(samples, request, "samples")
    sections_data = await _read(sections, request, "sections")
    if not samples_data:
        raise CompensationInputError("samples: empty file / 监测数据为空")
    # CPU-bound (parsing, decimals): off the event loop so other requests keep being served.
    return await run_in_threadpool(calculate_from_csv, district, month, samples_data, sections_data or None,
                                   _options(options))


@router.post("/calculate", summary="The month's compensation per section, pollutant and paying unit",
             responses={200: {"description": "Amounts with the clause of each, the rule set and the options"},
                        **ERRORS})
async def calculate(answer: dict = Depends(calculation_input)) -> JSONResponse:
    return JSONResponse(answer)


@router.post("/report", summary="The monthly report (bilingual HTML or PDF), or the sections map, for the same input",
             responses={200: {"description": "The report", "content": {"text/html": {}, "application/pdf": {}}},
                        503: {**_ERROR, "description": "PDF rendering unavailable (no CJK font)"}, **ERRORS})
async def report(
    answer: dict = Depends(calculation_input),
    format: str = Form("html", description="html | pdf | map (offline map of the sections with coordinates)"),  # noqa: A002
) -> Response:
    if format not in ("html", "pdf", "map"):
        raise CompensationInputError(f"format {format!r} is not html, pdf or map")
    if format == "html":
        return HTMLResponse(report_html(answer))
    if format == "map":
        from maps.compensation_map import sections_map_html  # folium: imported when a map is first asked for

        return HTMLResponse(await run_in_threadpool(sections_map_html, answer))
    try:
        pdf = await run_in_threadpool(report_pdf, answer)
    except RuntimeError as exc:
        return JSONResponse(status_code=503, content={"detail": str(exc)})
    return Response(pdf, media_type="application/pdf", headers={
        "content-disposition": f'attachment; filename="compensation-{answer["district_code"]}-{answer["month"]}.pdf"'})


class Project(BaseModel):
    unit: str = Field(..., min_length=1, description="Applying unit")
    project: str = ""
    investment_yuan: float = Field(..., ge=0, description="The project's total investment")
    requested_yuan: float | None = Field(None, ge=0, description="Subsidy asked for (default: the cap)")


class AllocationRequest(BaseModel):
    district: str = Field("110118", description="Adcode; only 密云 (110118) has an allocation rule")
    year: int = Field(..., ge=1900, le=2200, description="The allocation year; uses the rule set in force on 1 January")
    previous_year_total_yuan: float = Field(..., ge=0)
    rewarded_units: list[str] = Field([], description="Units whose sections met the standard (附件2第三条)")
    commended_units: list[str] = Field([], description="Units commended for their work (附件2第四条)")
    projects: list[Project] = Field([], description="Subsidy applications (附件2第五条)")


@router.post("/allocate", summary="密云: the annual allocation of last year's total (30 % / 20 % / 50 %)",
             responses={200: {"description": "Pools, grants, rewards and commendations"}, **ERRORS})
def allocation(body: AllocationRequest) -> dict:
    rs = rule_set_for(body.district, date(body.year, 1, 1))
    return allocate(rs, str(body.previous_year_total_yuan), body.rewarded_units, body.commended_units,
                    [{k: v for k, v in p.model_dump().items() if v is not None} for p in body.projects])


@router.get("/rules", summary="Every compensation rule set: document, dates, clauses, options, readings",
            responses={200: {"description": "Rule sets and the GB 3838-2002 limits"}})
def rules() -> dict:
    return {"rule_sets": [rs.summary() for rs in load_rule_sets()], "standard": standard_summary()}


@router.get("/sections", summary="The shipped section tables (密云 附表1–4); 海淀 lists none",
            responses={200: {"description": "Sections per rule set"}, **ERRORS})
def sections(district: str | None = Query(None, description="Adcode; default every district")) -> dict:
    sets = [rs for rs in load_rule_sets() if district in (None, rs.district_code)]
    if district is not None and not sets:
        raise CompensationInputError(f"district {district!r}: no compensation rules known")
    out = []
    for rs in sets:
        secs = shipped_sections(rs)
        out.append({"rule_set": rs.id, "doc_no": rs.raw.get("doc_no"), "district_code": rs.district_code,
                    "sections": [s.as_dict() for s in secs], "tn_table": tn_table(rs),
                    "note_zh": None if secs else rs.raw.get("sections_source_zh") or rs.raw.get("unavailable_zh"),
                    "note_en": None if secs else rs.raw.get("sections_source_en") or rs.raw.get("unavailable_en")})
    return {"district_sections": out}
