"""The new-version webhook: ``ZONING_WEBHOOK_URL`` is POSTed each new data version and its
impact on the registered sites.

A thread started with the service looks at the store's versions every
``webhook_poll_seconds`` (so versions written by the CLI are seen too). For each version
newer than the last one delivered it POSTs JSON ``{"event": "data_version", "version",
"data_version", "previous", "impact": <geo.impact summary>}`` with the header
``X-Zoning-Signature: sha256=<hex HMAC-SHA256 of the body with ZONING_WEBHOOK_SECRET>``.
A failed delivery (network error or a non-2xx answer) is retried ``ATTEMPTS`` times with
doubling waits. Every attempt is a row of the delivery log, the store's ``webhook_log``
work table (``geo.store.work``; with a store file, an earlier release's
``<store>.webhook.jsonl`` is still read); the last delivered version is read back from it
at start, so a restart neither repeats nor skips a notice.

Several replicas (or ``--workers``) on one store each run a notifier, and exactly one of them
sends each notice: before sending, a notifier claims the version in the ``webhook_claims`` work
table, in a write transaction of the store, so two processes never both hold the claim. The
others wait for that version to be delivered (or given up after ``ATTEMPTS``) before moving
on, so notices still arrive in version order. A claim whose holder died mid-way — no delivery
and fewer than ``ATTEMPTS`` attempts logged after ``CLAIM_LEASE_S`` — is taken over.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import os
import socket
import threading
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from api.dependencies import today
from api.impact import compute_impact
from geo import impact as gimpact
from geo.store import ZoneStore

log = logging.getLogger("zoning.webhook")
ATTEMPTS = 4
FIRST_WAIT_S = 0.5
TIMEOUT_S = 10
# Longer than a whole delivery (ATTEMPTS x TIMEOUT_S plus the waits, ~45 s) and its payload.
CLAIM_LEASE_S = 300.0


def signature(secret: str, body: bytes) -> str:
    """The value of X-Zoning-Signature for ``body``."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


_LOG_FIELDS = ("at", "url", "version", "attempt", "status", "error", "delivered")


def delivery_log(store) -> list[dict[str, Any]]:
    """Every delivery attempt, oldest first."""
    with store.work().reading() as tx:
        rows = [] if tx is None else tx.execute(f"SELECT {', '.join(_LOG_FIELDS)} FROM webhook_log ORDER BY id")
        return [{**r, "delivered": bool(r["delivered"])} for r in rows]


def last_delivered(store) -> int | None:
    versions = [e["version"] for e in delivery_log(store) if e["delivered"]]
    path = getattr(store, "path", None)  # an earlier release's log beside a store file
    legacy = Path(path).with_name(f"{Path(path).stem}.webhook.jsonl") if path is not None else None
    if not versions and legacy is not None and legacy.exists():
        versions = [entry["version"] for entry in map(json.loads, legacy.read_text(encoding="utf-8").splitlines())
                    if entry.get("delivered")]
    return max(versions) if versions else None


class WebhookNotifier:
    def __init__(self, store: ZoneStore, url: str, secret: str, poll_seconds: float = 2.0):
        if not secret:
            raise ValueError("ZONING_WEBHOOK_URL is set without ZONING_WEBHOOK_SECRET: the webhook body must be signed")
        self.store, self.url, self.secret, self.poll_seconds = store, url, secret, poll_seconds
        self.name = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"  # this notifier, in claims
        delivered = last_delivered(store)
        self.last = delivered if delivered is not None else store.current().version
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="zoning-webhook", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                for info in sorted(self.store.versions(), key=lambda v: v.version):
                    if info.version <= self.last:
                        continue
                    claim = self.claim(info.version)
                    if claim == "pending":  # another process is sending it: look again next round
                        break
                    if claim == "mine":
                        self.notify(info)
                    self.last = info.version
            except Exception:  # noqa: BLE001 - the notifier must outlive one bad round; logged
                log.exception("webhook round failed")

    def claim(self, version: int) -> str:
        """``"mine"`` when this notifier is to send ``version``'s notice (it holds the claim now),
        ``"done"`` when it was delivered or given up, ``"pending"`` while another process holds a
        live claim. One write transaction: of two notifiers asking at once, one gets it."""
        now = dt.datetime.now(dt.UTC)
        with self.store.work().writing() as tx:
            held = tx.execute("SELECT claimed_by, claimed_at FROM webhook_claims WHERE version = ? AND url = ?",
                              (version, self.url)).fetchone()
            if held is not None and held["claimed_by"] != self.name:
                tries = tx.execute("SELECT count(*) AS n, max(delivered) AS delivered FROM webhook_log "
                                   "WHERE version = ? AND url = ?", (version, self.url)).fetchone()
                if tries["delivered"] or tries["n"] >= ATTEMPTS:
                    return "done"
                if (now - dt.datetime.fromisoformat(held["claimed_at"])).total_seconds() < CLAIM_LEASE_S:
                    return "pending"
                log.warning("webhook: taking over version %s from %s (claimed %s, not delivered)", version,
                            held["claimed_by"], held["claimed_at"])
                tx.execute("DELETE FROM webhook_claims WHERE version = ? AND url = ?", (version, self.url))
            if held is None or held["claimed_by"] != self.name:
                tx.execute("INSERT INTO webhook_claims (version, url, claimed_by, claimed_at) VALUES (?, ?, ?, ?)",
                           (version, self.url, self.name, now.isoformat(timespec="seconds")))
        return "mine"

    def payload(self, info) -> dict[str, Any]:
        sites = gimpact.load_sites(self.store)
        _, summary = compute_impact(self.store, sites, None, info.version, today())
        return {"event": "data_version", "version": info.version, "data_version": info.data_version,
                "previous": summary["from"], "impact": summary}

    def notify(self, info) -> bool:
        """Deliver the notice of version ``info``, retrying; True once a 2xx answered."""
        body = json.dumps(self.payload(info), ensure_ascii=False).encode("utf-8")
        headers = {"Content-Type": "application/json", "X-Zoning-Signature": signature(self.secret, body),
                   "X-Zoning-Version": str(info.version)}
        wait = FIRST_WAIT_S
        for attempt in range(1, ATTEMPTS + 1):
            status, error = None, None
            try:
                request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
                with urllib.request.urlopen(request, timeout=TIMEOUT_S) as answer:
                    status = answer.status
            except urllib.error.HTTPError as exc:
                status, error = exc.code, str(exc)
            except (urllib.error.URLError, OSError) as exc:
                error = str(exc)
            delivered = status is not None and 200 <= status < 300
            self._record({"version": info.version, "attempt": attempt, "status": status, "error": error,
                          "delivered": delivered})
            if delivered:
                return True
            if attempt < ATTEMPTS and not self._stop.wait(wait):
                wait *= 2
        log.error("webhook: version %s not delivered to %s after %d attempts", info.version, self.url, ATTEMPTS)
        return False

    def _record(self, entry: dict[str, Any]) -> None:
        entry = {"at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "url": self.url, **entry,
                 "delivered": int(entry["delivered"])}
        with self.store.work().writing() as tx:
            tx.execute(f"INSERT INTO webhook_log ({', '.join(_LOG_FIELDS)}) VALUES "
                       f"({', '.join('?' for _ in _LOG_FIELDS)})", [entry[f] for f in _LOG_FIELDS])


def start_notifier(store: ZoneStore, settings) -> WebhookNotifier | None:
    """The running notifier when a webhook is configured, else None."""
    if not settings.webhook_url:
        return None
    notifier = WebhookNotifier(store, settings.webhook_url, settings.webhook_secret or "",
                               settings.webhook_poll_seconds)
    notifier.start()
    return notifier
