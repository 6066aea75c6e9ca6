"""Run by tests/test_qgis.py under Debian's python3 (python3-qgis), not the project's venv.

Opens each collection of a running zoning server through QGIS's OGC API – Features
provider, headless (QT_QPA_PLATFORM=offscreen), and prints one JSON object: per
collection, whether the layer is valid, its field types, every feature's zone_id and
rules_zh, and the zone ids QGIS returns for a date filter set as the layer's subset
string (which QGIS turns into a ``datetime=`` request).

usage: python3 qgis_oapif_probe.py BASE_URL LAYER[,LAYER...] DATE_FILTER
"""

import json
import sys

from qgis.core import QgsApplication, QgsVectorLayer


def probe(base: str, layer: str, date_filter: str) -> dict:
    uri = f"url='{base}' typename='{layer}'"
    vector = QgsVectorLayer(uri, layer, "OAPIF")
    if not vector.isValid():
        return {"valid": False, "error": vector.error().summary()}
    features = list(vector.getFeatures())
    filtered = QgsVectorLayer(uri, layer, "OAPIF")
    filtered.setSubsetString(date_filter)
    return {
        "valid": True,
        "fields": {field.name(): field.typeName() for field in vector.fields()},
        "rules_zh": {f["zone_id"]: f["rules_zh"] for f in features},
        "filtered": sorted(f["zone_id"] for f in filtered.getFeatures()),
    }


def main() -> None:
    base, layers, date_filter = sys.argv[1:4]
    app = QgsApplication([], False)
    app.initQgis()
    try:
        result = {layer: probe(base, layer, date_filter) for layer in layers.split(",")}
    finally:
        app.exitQgis()
    print(json.dumps(result, ensure_ascii=False, default=str))


if __name__ == "__main__":
    main()
