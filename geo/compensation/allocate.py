"""密云's annual allocation of the previous year's compensation total (密政发〔2021〕2号 附件2).

* 第五条: 50 % subsidises pollution-control projects, each grant at most 30 % of the project's
  investment (and at most what was requested); requests beyond the pool are scaled down pro rata
  (the text does not say — a stated reading); what the requests leave unused joins the reward pool.
* 第三条: 30 % (plus that remainder) rewards the units whose sections met the standard, in equal shares.
* 第四条: 20 % commends units for outstanding work, in equal shares (the text names no split).

The lists of rewarded and commended units are inputs: the text has the bureau submit them for the
district government's approval. Amounts are split to the fen; leftover fen go to the first-listed
units. A pool with no eligible unit stays unallocated and is reported.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from geo.compensation.calculate import FEN, ZERO, split_equally, yuan
from geo.compensation.rules import CompensationInputError, RuleSet

MAX_YUAN = Decimal(10) ** 13  # ten trillion yuan: far beyond any district budget, well inside exact decimals


def _money(value, where: str) -> Decimal:
    try:
        d = Decimal(str(value))
    except InvalidOperation:
        raise CompensationInputError(f"{where}: {value!r} is not an amount in yuan") from None
    if not d.is_finite() or d < 0 or d > MAX_YUAN:
        raise CompensationInputError(f"{where}: {value!r} must be an amount in yuan between 0 and {MAX_YUAN:,}")
    return d.quantize(FEN)


def _units(names, where: str) -> tuple[str, ...]:
    out = tuple(dict.fromkeys(str(n).strip() for n in names or () if str(n).strip()))
    if len(out) != len([n for n in names or () if str(n).strip()]):
        raise CompensationInputError(f"{where}: a unit is listed twice")
    return out


def allocate(rs: RuleSet, previous_year_total, rewarded_units=(), commended_units=(), projects=()) -> dict:
    """The allocation answer: pools, grants per project, reward and commendation per unit, clauses."""
    if rs.engine != "miyun_2021":
        raise CompensationInputError(f"{rs.raw.get('doc_no')}: the annual allocation is a 密云 rule (附件2)")
    shares = {k: Decimal(v) for k, v in rs.parameters["allocation"].items()}
    total = _money(previous_year_total, "previous_year_total_yuan")
    reward_pool = (total * shares["reward"]).quantize(FEN)
    commendation_pool = (total * shares["commendation"]).quantize(FEN)
    subsidy_pool = total - reward_pool - commendation_pool  # so the three add up to the total exactly
    grants = []
    for n, p in enumerate(projects or (), start=1):
        where = f"projects[{n}]"
        if not isinstance(p, dict) or not str(p.get("unit", "")).strip():
            raise CompensationInputError(f"{where}: needs unit, investment_yuan and requested_yuan")
        investment = _money(p.get("investment_yuan"), f"{where}.investment_yuan")
        requested = _money(p.get("requested_yuan", investment), f"{where}.requested_yuan")
        cap = (investment * shares["subsidy_cap_of_investment"]).quantize(FEN)
        grants.append({"unit": str(p["unit"]).strip(), "project": str(p.get("project", "")), "investment_yuan": investment,
                       "requested_yuan": requested, "cap_yuan": cap, "eligible_yuan": min(requested, cap)})
    eligible = sum((g["eligible_yuan"] for g in grants), ZERO)
    scale = Decimal(1) if eligible <= subsidy_pool or not eligible else subsidy_pool / eligible
    granted_total = ZERO
    for g in grants:
        g["granted_yuan"] = (g["eligible_yuan"] * scale).quantize(FEN, rounding="ROUND_DOWN")
        granted_total += g["granted_yuan"]
    subsidy_left = subsidy_pool - granted_total
    rewarded = _units(rewarded_units, "rewarded_units")
    commended = _units(commended_units, "commended_units")
    reward_total = reward_pool + subsidy_left
    reward = split_equally(reward_total, rewarded)
    commendation = split_equally(commendation_pool, commended)
    unallocated = (ZERO if rewarded else reward_total) + (ZERO if commended else commendation_pool)
    return {
        "rule_set": rs.raw.get("doc_no"),
        "previous_year_total_yuan": yuan(total),
        "pools": {
            "reward": {"share": float(shares["reward"]), "amount_yuan": yuan(reward_pool),
                       "plus_unused_subsidy_yuan": yuan(subsidy_left), "clause": rs.cite("a2_3")},
            "commendation": {"share": float(shares["commendation"]), "amount_yuan": yuan(commendation_pool),
                             "clause": rs.cite("a2_4")},
            "subsidy": {"share": float(shares["subsidy"]), "amount_yuan": yuan(subsidy_pool),
                        "cap_of_investment": float(shares["subsidy_cap_of_investment"]),
                        "scaled_pro_rata": scale != 1, "scale": float(scale), "clause": rs.cite("a2_5")},
        },
        "subsidies": [{k: (yuan(v) if isinstance(v, Decimal) else v) for k, v in g.items()} for g in grants],
        "rewards": [{"unit": u, "amount_yuan": yuan(a)} for u, a in reward],
        "commendations": [{"unit": u, "amount_yuan": yuan(a)} for u, a in commendation],
        "unallocated_yuan": yuan(unallocated),
        "readings": [x for x in rs.summary()["readings"] if x["key"] == "reward_units_given"],
    }
