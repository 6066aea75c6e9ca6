"""Service commands: ``serve`` and ``info``."""

from __future__ import annotations

import json
from pathlib import Path

import typer
from rich.table import Table

from api.cli.common import app, console, resolve_store, store_option
from api.settings import get_settings
from geo.store import open_store


@app.command()
def serve(
    host: str = typer.Option(None, help="Interface to bind (default $ZONING_HOST or 127.0.0.1)."),
    port: int = typer.Option(None, help="Port (default $ZONING_PORT or 8000)."),
    store: Path | None = store_option(),
    workers: int = typer.Option(1, min=1, max=64, help="Worker processes (uvicorn); each serves the store's "
                                "current version and notices new ones on its next request."),
) -> None:
    """Run the web service: map, lookup API, OGC API – Features, exports."""
    import os

    import uvicorn

    from api.app import create_app

    settings = get_settings().model_copy(update={"warm_on_start": True})
    if store:
        settings.store = store
    host = host or settings.host
    port = port or settings.port
    open_store(settings.store, settings.seed)  # create it now so errors show before the server starts
    base = f"http://{host}:{port}"
    console.print(f"[bold]zoning[/bold] serving store {settings.store}")
    console.print(f"  地图 map:        {base}/map")
    console.print(f"  API 文档 docs:   {base}/docs")
    console.print(f"  OGC API:         {base}/")
    # access_log off: the app logs one line per request itself (with duration and request id).
    if workers > 1:  # each worker process builds its app from the environment
        os.environ.update(ZONING_STORE=str(settings.store), ZONING_SEED=str(settings.seed),
                          ZONING_WARM_ON_START="true")
        console.print(f"  workers:         {workers}")
        uvicorn.run("api.app:create_app", factory=True, workers=workers, host=host, port=port,
                    log_level=settings.log_level, access_log=False)
        return
    uvicorn.run(create_app(settings), host=host, port=port, log_level=settings.log_level, access_log=False)


@app.command()
def info(store: Path | None = store_option(), as_json: bool = typer.Option(False, "--json")) -> None:
    """Layers, zone counts, data version and store path."""
    from geo.schema import LAYERS

    zone_store = resolve_store(store)
    zones, current = zone_store.snapshot()
    counts = zones.groupby(["layer", "accuracy"]).size()
    if as_json:
        payload = {
            "store": zone_store.location,
            "data_version": current.data_version,
            "version": current.version,
            "zones": len(zones),
            "layers": {layer: int(n) for layer, n in zones["layer"].value_counts().sort_index().items()},
        }
        print(json.dumps(payload, ensure_ascii=False, indent=2))
        return
    console.print(f"store: {zone_store.location}", highlight=False)
    console.print(f"data version: {current.data_version} ({current.action} {current.created_at})")
    table = Table("layer", "图层", "accuracy", "zones")
    for (layer, accuracy), n in counts.items():
        table.add_row(layer, LAYERS[layer].title_zh if layer in LAYERS else "?", accuracy, str(n))
    console.print(table)
    console.print(f"total: {len(zones)} zones")
