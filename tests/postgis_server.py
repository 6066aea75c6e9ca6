"""A throwaway PostgreSQL + PostGIS server for the cross-check test and the benchmark.

Uses Debian's ``postgresql-15-postgis-3`` binaries: ``initdb`` a cluster in a new
temporary directory, start it on a free loopback port (its unix socket in the same
directory), and remove everything on exit. PostgreSQL refuses to run as root, so as
root the server runs as the ``postgres`` system user (``runuser``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.browser import free_port


class PostGISUnavailable(RuntimeError):
    """The PostgreSQL/PostGIS binaries or psycopg are not installed."""


@dataclass(frozen=True)
class Server:
    host: str
    port: int

    @property
    def conninfo(self) -> str:
        return f"host={self.host} port={self.port} user=postgres dbname=postgres"


def _bin_dir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            version = Path(candidate).parent.name
            if glob.glob(f"/usr/share/postgresql/{version}/extension/postgis.control"):
                return Path(candidate)
    raise PostGISUnavailable("PostgreSQL with PostGIS not found (Debian: apt-get install postgresql-15-postgis-3)")


@contextlib.contextmanager
def postgis_server() -> Iterator[Server]:
    """Start a PostGIS server for the duration of the block; raise PostGISUnavailable if it cannot be."""
    try:
        import psycopg
    except ImportError:
        raise PostGISUnavailable("psycopg is not installed (pip install 'psycopg[binary]')") from None
    bin_dir = _bin_dir()
    as_root = os.geteuid() == 0
    prefix = ["runuser", "-u", "postgres", "--"] if as_root else []
    workdir = Path(tempfile.mkdtemp(prefix="zoning-postgis-"))
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(workdir, user.pw_uid, user.pw_gid)
    data, log = workdir / "data", workdir / "server.log"
    port = free_port()

    def run(*args: str) -> None:
        subprocess.run([*prefix, *args], check=True, capture_output=True, text=True, timeout=120)

    started = False
    try:
        run(str(bin_dir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
            "--locale=C", "--no-sync")
        options = f"-c listen_addresses=127.0.0.1 -p {port} -k {workdir} -c fsync=off -c full_page_writes=off -c max_connections=400"
        run(str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", options, "-w", "-t", "60", "start")
        started = True
        server = Server("127.0.0.1", port)
        with psycopg.connect(server.conninfo, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        yield server
    except subprocess.CalledProcessError as exc:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"PostgreSQL failed: {' '.join(exc.cmd)}: {exc.stderr}{tail}") from None
    finally:
        if started:
            subprocess.run([*prefix, str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"],
                           capture_output=True, timeout=60)
        shutil.rmtree(workdir, ignore_errors=True)


def load_zones(conn, geoms, zone_ids) -> None:
    """Table ``zones(i, zone_id, geom)`` with a GiST index; geometries as WKB (EPSG:4326)."""
    import shapely

    conn.execute("CREATE TABLE zones (i integer PRIMARY KEY, zone_id text, geom geometry(Geometry, 4326))")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO zones VALUES (%s, %s, ST_GeomFromWKB(%s, 4326))",
                        [(i, zid, shapely.to_wkb(g)) for i, (zid, g) in enumerate(zip(zone_ids, geoms, strict=True))])
    conn.execute("CREATE INDEX ON zones USING gist (geom)")


def load_points(conn, lon, lat) -> None:
    """Table ``points(i, geom)`` with a GiST index, loaded by COPY."""
    conn.execute("CREATE TABLE points (i integer PRIMARY KEY, geom geometry(Point, 4326))")
    with conn.cursor() as cur, cur.copy("COPY points (i, geom) FROM STDIN") as copy:
        for i, (x, y) in enumerate(zip(lon.tolist(), lat.tolist(), strict=True)):
            copy.write_row((i, f"SRID=4326;POINT({x!r} {y!r})"))
    conn.execute("CREATE INDEX ON points USING gist (geom)")
    conn.execute("ANALYZE points")
    conn.execute("ANALYZE zones")


COVERS_SQL = "SELECT p.i, z.i FROM points p JOIN zones z ON ST_Covers(z.geom, p.geom)"
