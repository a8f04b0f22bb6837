"""The platform's metrics over time, for the Health page: scrapes of the emulator's Prometheus endpoint, kept in memory.

The functions expose counters and gauges as they are now (/metrics); history comes from scraping
them every `interval` seconds and keeping the last `keep` scrapes (an hour at 15 s by default).
Rates and mean latencies are taken between consecutive scrapes, as Prometheus' rate() would.
In the cloud the same series are in Cloud Monitoring, on the dashboard in monitoring/dashboard.json.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import pandas as pd
import requests
from prometheus_client.parser import text_string_to_metric_families

Labels = frozenset[tuple[str, str]]


@dataclass(frozen=True)
class Scrape:
    at: float
    values: dict[tuple[str, Labels], float]


class MetricsHistory:
    """Scrapes url every interval seconds (from a daemon thread once started); thread-safe."""

    def __init__(self, url: str, *, interval: float = 15.0, keep: int = 240) -> None:
        self.url = url.rstrip("/") + "/metrics"
        self.interval = interval
        self._scrapes: deque[Scrape] = deque(maxlen=keep)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self.error: str | None = None

    def start(self) -> MetricsHistory:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="metrics-history", daemon=True)
            self._thread.start()
        return self

    def scrape(self) -> bool:
        """Take one scrape now; False (and error says why) when the endpoint does not answer."""
        try:
            response = requests.get(self.url, timeout=5)
        except requests.RequestException as exc:
            self.error = f"cannot reach {self.url}: {type(exc).__name__}"
            return False
        if response.status_code != 200:
            self.error = f"{self.url} answered {response.status_code} (only the local emulator serves /metrics)"
            return False
        values = {(s.name, frozenset(s.labels.items())): float(s.value)
                  for family in text_string_to_metric_families(response.text) for s in family.samples
                  if s.name.startswith("paradyze_")}
        with self._lock:
            self._scrapes.append(Scrape(time.time(), values))
        self.error = None
        return True

    def scrapes(self) -> list[Scrape]:
        with self._lock:
            return list(self._scrapes)

    def gauge(self, name: str, by: str, **where: str) -> pd.DataFrame:
        """Columns at, <by>, value: the gauge at each scrape, summed per value of the label by."""
        rows = [{"at": pd.Timestamp(scrape.at, unit="s"), by: k, "value": v}
                for scrape in self.scrapes() for k, v in self._totals(scrape, name, by, where).items()]
        return pd.DataFrame(rows, columns=["at", by, "value"])

    def rate(self, name: str, by: str, *, per: float = 60.0, **where: str) -> pd.DataFrame:
        """Columns at, <by>, value: how much a counter grew per `per` seconds between scrapes."""
        return self._between(name, by, where, lambda d, dt, _: d * per / dt)

    def mean(self, histogram: str, by: str, **where: str) -> pd.DataFrame:
        """Columns at, <by>, value: the mean of what a histogram recorded between scrapes (no value when nothing)."""
        return self._between(f"{histogram}_sum", by, where, lambda d, _, n: d / n if n else None,
                             count=f"{histogram}_count")

    def _between(self, name: str, by: str, where: dict[str, str], value: object,
                 count: str | None = None) -> pd.DataFrame:
        rows = []
        scrapes = self.scrapes()
        for before, after in zip(scrapes, scrapes[1:], strict=False):
            now, then = self._totals(after, name, by, where), self._totals(before, name, by, where)
            counts = self._totals(after, count, by, where) if count else {}
            counts_then = self._totals(before, count, by, where) if count else {}
            for key, total in now.items():
                delta = total - then.get(key, 0.0)
                n = counts.get(key, 0.0) - counts_then.get(key, 0.0)
                got = value(max(delta, 0.0), after.at - before.at, n)  # type: ignore[operator]
                if got is not None:
                    rows.append({"at": pd.Timestamp(after.at, unit="s"), by: key, "value": got})
        return pd.DataFrame(rows, columns=["at", by, "value"])

    @staticmethod
    def _totals(scrape: Scrape, name: str | None, by: str, where: dict[str, str]) -> dict[str, float]:
        totals: dict[str, float] = {}
        for (n, labels), v in scrape.values.items():
            got = dict(labels)
            if n == name and all(got.get(k) == w for k, w in where.items()):
                totals[got.get(by, "")] = totals.get(got.get(by, ""), 0.0) + v
        return totals

    def _run(self) -> None:
        while True:
            self.scrape()
            time.sleep(self.interval)
