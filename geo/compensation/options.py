"""The named options of a rule set: parse user values, fill defaults, show both in every answer.

Values arrive as strings (form fields, ``--option NAME=VALUE``) or as JSON values. Lists of section ids
are ';'-separated (``S01;S02``); co-payers are ``SECTION=UNIT`` pairs separated by ';'
(``S05=不老屯镇;S06=北庄镇``). Unknown names and values outside the choices are errors.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from geo.compensation.rules import CompensationInputError, RuleSet


def _as_list(value) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(x.strip() for x in str(value or "").replace("；", ";").replace(",", ";").split(";") if x.strip())


def _co_payers(value) -> dict[str, tuple[str, ...]]:
    if isinstance(value, dict):
        return {str(k): _as_list(v) for k, v in value.items()}
    out: dict[str, list[str]] = {}
    for pair in _as_list(value):
        sid, sep, unit = pair.partition("=")
        if not sep or not sid.strip() or not unit.strip():
            raise CompensationInputError(f"option co_payers: {pair!r} is not SECTION=UNIT")
        out.setdefault(sid.strip(), []).append(unit.strip())
    return {k: tuple(v) for k, v in out.items()}


def _percent(value) -> Decimal:
    try:
        d = Decimal(str(value).strip().removesuffix("%"))
    except InvalidOperation:
        raise CompensationInputError(
            f"option tn_blank_thresholds: {value!r} is not missing, merged_cell_above or a percentage") from None
    if not d.is_finite() or not 0 < d <= 100:
        raise CompensationInputError(f"option tn_blank_thresholds: {value!r} must be a percentage in (0, 100]")
    return d


def resolve_options(rule_set: RuleSet, given: dict | None) -> dict:
    """Every option of the rule set → its value (the default unless given)."""
    given = dict(given or {})
    unknown = sorted(set(given) - set(rule_set.options))
    if unknown:
        raise CompensationInputError(
            f"unknown option(s) {', '.join(unknown)} for {rule_set.raw.get('doc_no')}; "
            f"known: {', '.join(rule_set.options) or 'none'}")
    values = {}
    for name, spec in rule_set.options.items():
        raw = spec.default if given.get(name) in (None, "") else given[name]
        if name == "max_sections":
            values[name] = _as_list(raw)
        elif name == "co_payers":
            values[name] = _co_payers(raw)
        elif name == "tn_blank_thresholds":
            text = str(raw).strip()
            values[name] = text if text in ("missing", "merged_cell_above") else _percent(text)
        else:
            text = str(raw).strip()
            if text not in spec.choices:
                raise CompensationInputError(
                    f"option {name}: {text!r} is not one of {', '.join(map(str, spec.choices))}")
            values[name] = text
    return values


def shown_options(rule_set: RuleSet, values: dict) -> dict:
    """Options as the answer shows them: value, default, whether the default was used, clause."""
    def plain(v):
        if isinstance(v, Decimal):
            return float(v)
        if isinstance(v, tuple):
            return list(v)
        if isinstance(v, dict):
            return {k: list(x) for k, x in v.items()}
        return v

    return {
        name: {"value": plain(values[name]), "default": spec.default,
               "is_default": plain(values[name]) == plain(spec.default), "clause": rule_set.cite(spec.clause),
               "zh": spec.zh, "en": spec.en}
        for name, spec in rule_set.options.items()
    }
