"""Whatever bytes arrive as the samples or sections file, the calculator either answers or raises its
own input error (a 422 / exit 2 with a message) — never another exception (a 500)."""

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from geo.compensation.calculate import calculate_from_csv
from geo.compensation.rules import CompensationInputError
from tests.compensation_helpers import SAMPLE_COLUMNS, SECTION_COLUMNS

CELL = st.one_of(st.sampled_from(["", "S01", "S02", "S12", "II", "VI", "true", "2021-03-05", "-1", "1e999",
                                  "NaN", "0", "0.5", "1e-30", "Infinity", "海淀镇", "110118", "a;b", "S01;S02"]),
                 st.text(max_size=8))


def _csv(header: str, rows) -> bytes:
    return "\n".join([header, *(",".join(r) for r in rows)]).encode("utf-8")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(samples=st.one_of(st.binary(max_size=300),
                         st.lists(st.lists(CELL, min_size=8, max_size=9), max_size=6).map(
                             lambda rows: _csv(SAMPLE_COLUMNS, rows))),
       sections=st.one_of(st.none(), st.binary(max_size=200),
                          st.lists(st.lists(CELL, min_size=17, max_size=17), max_size=3).map(
                              lambda rows: _csv(SECTION_COLUMNS, rows))),
       district=st.sampled_from(["110118", "110108", "110109", "x"]),
       month=st.sampled_from(["2021-03", "2018-05", "2020-12", "21-3", ""]))
def test_any_upload_answers_or_is_a_clear_input_error(samples, sections, district, month):
    try:
        answer = calculate_from_csv(district, month, samples, sections)
    except CompensationInputError as exc:
        assert str(exc)
    else:
        assert answer["total_yuan"] >= 0
