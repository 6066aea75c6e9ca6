"""A standalone map of the month's compensation: the sections with coordinates as points, each popup
showing that section's result. Most sections have no published coordinates (密云: one of 39, a
schematic point); the map says how many are not shown. Assets are vendored and inlined (no CDN), the
basemap blank, so the file opens offline."""

from __future__ import annotations

from html import escape

import folium

from maps.assets import RawHtml, localise


def _popup(s: dict) -> str:
    charged = "".join(f"<li>{escape(i['pollutant'])} {i['amount_yuan']:,} 元 — {escape(i['clause'])}</li>"
                      for i in s["items"] if i["amount_yuan"])
    payers = "、".join(f"{escape(p['unit'])} {p['amount_yuan']:,}" for p in s["payers"])
    return (f"<b>{escape(s['section_id'])} {escape(s['name'])}</b><br>{escape(s['month'])}："
            f"{s['amount_yuan']:,} 元 / yuan ({escape(s['status'])})"
            + (f"<br>缴纳 / paid by: {payers}" if payers else "") + (f"<ul>{charged}</ul>" if charged else ""))


def sections_map_html(answer: dict) -> str:
    """One self-contained HTML map for a calculation answer (``geo.compensation.calculate``)."""
    located = [s for s in answer["sections"] if s.get("lon") is not None and s.get("lat") is not None]
    centre = [sum(s["lat"] for s in located) / len(located), sum(s["lon"] for s in located) / len(located)] \
        if located else [40.37, 116.84]
    m = folium.Map(location=centre, zoom_start=10, tiles=None, control_scale=True)
    for s in located:
        folium.CircleMarker([s["lat"], s["lon"]], radius=8, weight=2, fill=True, fill_opacity=0.8,
                            color="#b2182b" if s["amount_yuan"] else "#2166ac", dash_array="4 4",
                            popup=folium.Popup(_popup(s), max_width=420),
                            tooltip=f"{s['section_id']} {s['name']}").add_to(m)
    missing = len(answer["sections"]) - len(located)
    note = (f"{answer['rule_set']['doc_no']} {answer['month']}：图上 {len(located)} 个断面"
            f"（位置为示意，非采样点坐标）；另有 {missing} 个有监测数据的断面无公开坐标，未画出。"
            f"<br>{len(located)} section(s) shown (schematic locations, not the sampling points); {missing} "
            "sampled section(s) have no published coordinates and are not drawn.")
    m.get_root().html.add_child(RawHtml(
        '<div style="position:fixed;bottom:12px;left:12px;z-index:1000;background:#fff;padding:6px 8px;'
        f'font:13px sans-serif;max-width:480px;border:1px solid #999">{note}</div>'))
    localise(m, inline=True)
    return m.get_root().render()
