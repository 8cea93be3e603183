"""The dashboard's traffic per revision: requests/s and errors from the proxies' published counts
(proxy/stats.py), in the snapshot and on the page (headless Chromium, as tests/test_dashboard.py)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from conftest import Server
from test_dashboard import Stream, browser, card, dash, deploy, dns, fake  # noqa: F401 - fixtures

from kubelite.proxy.stats import TRAFFIC_ANNOTATION, Counts, encode
from kubelite.ui.dashboard_model import TrafficRates


def lease(ns: str, h: str, counts: Counts, node: str = "n1") -> dict[str, Any]:
    return {"metadata": {"name": f"kubelite-proxy-{node}", "namespace": "kube-system",
                         "labels": {"kubelite.io/component": "proxy"},
                         "annotations": {TRAFFIC_ANNOTATION: encode({(ns, "web", h): counts})}}}


def test_rates_from_how_the_counts_grew_over_the_window() -> None:
    rates = TrafficRates()
    assert rates.view("default", "abc") is None
    rates.observe(100.0, [lease("default", "abc", Counts(10, 1, 1, 0)), lease("default", "abc", Counts(5, 0, 0, 0), "n2")])
    assert rates.view("default", "abc") == {"requests": 15, "errors": 1, "failed": 1, "http5xx": 0,
                                            "requestsPerSecond": 0.0, "errorsPerSecond": 0.0}
    assert not rates.busy()
    rates.observe(104.0, [lease("default", "abc", Counts(50, 9, 1, 8)), lease("default", "abc", Counts(5, 0, 0, 0), "n2")])
    v = rates.view("default", "abc")
    assert v is not None and (v["requests"], v["errors"], v["http5xx"]) == (55, 9, 8)
    assert (v["requestsPerSecond"], v["errorsPerSecond"]) == (10.0, 2.0) and rates.busy()
    # Nothing new for longer than the window: the rate falls back to 0, the totals stay.
    rates.observe(120.0, [lease("default", "abc", Counts(50, 9, 1, 8)), lease("default", "abc", Counts(5, 0, 0, 0), "n2")])
    v = rates.view("default", "abc")
    assert v is not None and v["requests"] == 55 and v["requestsPerSecond"] == 0.0 and not rates.busy()
    rates.observe(121.0, [])
    assert rates.view("default", "abc") is None


def put_lease(srv: Server, body: dict[str, Any]) -> None:
    srv.kubectl("apply", "-f", "-", input=json.dumps({"apiVersion": "coordination.k8s.io/v1", "kind": "Lease", **body}),
                check=True)


def test_the_page_shows_requests_per_second_and_errors_per_revision(fake: Server, dash: Any, dns: str,  # noqa: F811
                                                                     browser: Any, tmp_path: Path) -> None:  # noqa: F811
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    deploy(fake, dns, replicas=2)
    h = fake.kjson("-n", dns, "get", "replicasets")["items"][0]["metadata"]["labels"]["pod-template-hash"]
    node = f"fake-{dns}"  # a Lease of our own (no renewTime: the drain handshake ignores it)
    stream = Stream(dash)
    try:
        put_lease(fake, lease(dns, h, Counts(100, 7, 2, 5), node))
        snap = stream.wait_for(lambda s: (c := card(s, dns)) and c["replicasets"][0]["traffic"] and c)
        assert snap["replicasets"][0]["traffic"]["requests"] == 100
        assert snap["replicasets"][0]["traffic"]["errors"] == 7
        browser.get(dash.url(""))
        wait = WebDriverWait(browser, 60, poll_frequency=0.2)
        sel = f'section[data-deployment="{dns}/web"]'

        def cell(what: str, attr: str = "textContent") -> str | None:
            # Read in the page: the card is redrawn as snapshots arrive (no stale elements).
            return browser.execute_script(
                "const c = document.querySelector(arguments[0]); return c ? c[arguments[1]] : null;",
                f'{sel} td[data-traffic="{what}"]', attr)
        wait.until(lambda b: cell("errors") == "7")
        assert cell("errors", "title") == "5 HTTP 5xx, 2 failed connects"
        put_lease(fake, lease(dns, h, Counts(160, 13, 2, 11), node))
        rps = wait.until(lambda b: (t := cell("rps")) not in (None, "0.0") and t)
        assert float(rps) > 0
        errs = cell("errors")
        assert errs is not None and errs.startswith("13 (") and errs.endswith("/s)"), errs
        head = [th.text for th in browser.find_elements(By.CSS_SELECTOR, f"{sel} table.rs th")]
        assert "req/s" in head and "errors" in head
        (tmp_path / "traffic.png").write_bytes(browser.get_screenshot_as_png())
    finally:
        stream.close()
        fake.kubectl("-n", "kube-system", "delete", "lease", f"kubelite-proxy-{node}", "--ignore-not-found")
