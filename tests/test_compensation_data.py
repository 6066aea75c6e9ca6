"""The rule sets and section tables against their sources: every quoted clause is verbatim in the
seed gazette (whitespace and full/half-width punctuation aside), every shipped section name and
附表4 location is printed there, and the data's own structure holds. The seeds sit beside the project
(../shared); the seed checks skip when they are absent."""

import re

import pytest

from geo.compensation.rules import load_rule_sets, load_standard
from geo.compensation.sections import shipped_sections, tn_table

SEED_OF = {"110108": "002_97b7caefab17e37c.txt", "110118": "004_c7e3a888fcaa84a8.txt",
           "110109": "000_632d7d076616fb67.txt"}
_WIDTH = str.maketrans({"（": "(", "）": ")", "，": ",", "；": ";", "：": ":", "V": "Ⅴ"})


def norm(text: str) -> str:
    return re.sub(r"\s+", "", text).translate(_WIDTH)


@pytest.mark.parametrize("rs", load_rule_sets(), ids=lambda rs: rs.id)
def test_every_quoted_clause_is_verbatim_in_the_seed(rs, shared_dir):
    seed = norm((shared_dir / "seeds" / SEED_OF[rs.district_code]).read_text(encoding="utf-8"))
    for key, clause in rs.clauses.items():
        text = re.sub(r"（附表4第1行；各行百分比不同）$", "", clause["text"])
        for part in text.split("……"):
            assert norm(part) in seed, f"{rs.id} {key}: not verbatim: {part[:40]}…"


def test_shipped_sections_and_tn_rows_are_printed_in_the_seed(shared_dir):
    seed = norm((shared_dir / "seeds" / SEED_OF["110118"]).read_text(encoding="utf-8"))
    rs = next(r for r in load_rule_sets() if r.district_code == "110118")
    for s in shipped_sections(rs):
        assert norm(s.name) in seed, s.section_id
    for row in tn_table(rs):
        assert norm(row["location"]) in seed and norm(row["name_printed"]) in seed, row["tn_row"]


def test_rule_set_structure():
    sets = load_rule_sets()
    assert {(rs.district_code, rs.raw.get("doc_no")) for rs in sets} == {
        ("110108", "海行规发〔2017〕7号"), ("110118", "密政发〔2021〕2号"), ("110109", None)}
    for rs in sets:
        for spec in rs.options.values():  # every option names its clause and states a default among its choices
            assert spec.clause in rs.clauses and spec.zh and spec.en
            assert spec.default in spec.choices or spec.choices[0].startswith("<"), spec.name
        for reading in rs.raw.get("readings") or []:
            assert reading["clause"] in rs.clauses


def test_gb3838_limits_and_classes():
    std = load_standard()
    from decimal import Decimal as D

    # 表1: TP rivers Ⅲ 0.2 vs lakes/reservoirs Ⅲ 0.05; COD Ⅰ and Ⅱ both 15 (so 15 is class Ⅰ).
    assert std.limit("TP", 3, "river") == D("0.2") and std.limit("TP", 3, "lake") == D("0.05")
    assert std.classify("COD", D("15"), "river") == 1 and std.classify("COD", D("15.1"), "river") == 3
    assert std.classify("NH3N", D("2.0"), "river") == 5 and std.classify("NH3N", D("2.01"), "river") == 6
    assert std.classify("CODMn", D("4"), "river") == 2  # a value on a limit belongs to that class
