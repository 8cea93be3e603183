"""`kubelite dashboard` against a real server: the token, the live stream, the buttons, the page.

One cluster (fake runtime: pods become ready without processes, so rollouts finish fast)
and one dashboard process per module; each test works in its own namespace.  The HTTP
tests talk to the dashboard as the page does; the browser test drives Debian's headless
Chromium through Selenium and checks the page, a click on Pause, and a screenshot.
"""
from __future__ import annotations

import itertools
import json
import os
import re
import selectors
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, create_namespace, start_server

from kubelite.api.errors import Conflict
from kubelite.ui.dashboard_actions import pick_revision, plan_undo
from kubelite.ui.dashboard_model import snapshot

V1 = "jocatalin/kubernetes-bootcamp:v1"
V2 = "jocatalin/kubernetes-bootcamp:v2"
URL_LINE = re.compile(r"at (http://127\.0\.0\.1:(\d+)/)\?token=([A-Za-z0-9_-]+)")


# --- fixtures --------------------------------------------------------------------------

@dataclass
class Dash:
    """A running `kubelite dashboard` process."""

    proc: subprocess.Popen[str]
    base: str  # http://127.0.0.1:PORT/
    token: str
    log: Path

    def url(self, path: str, token: str | None = "") -> str:
        """The URL of ``path``; with the dashboard's token unless another (or None) is given."""
        tok = self.token if token == "" else token
        return self.base + path.lstrip("/") + (f"?token={tok}" if tok is not None else "")

    def request(self, path: str, *, method: str = "GET", body: bytes | None = None, token: str | None = "",
                headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        """(status, headers, body) of one request; HTTP errors are answers too."""
        req = urllib.request.Request(self.url(path, token), data=body, method=method, headers=headers or {})
        try:
            with urllib.request.urlopen(req, timeout=30) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def act(self, ns: str, name: str, action: str, body: bytes | None = None) -> tuple[int, dict[str, Any]]:
        """POST a button's action, the way the page sends it (token in the Authorization header)."""
        code, _, raw = self.request(f"api/namespaces/{ns}/deployments/{name}/{action}", method="POST",
                                    body=body if body is not None else b"", token=None,
                                    headers={"Authorization": f"token {self.token}"})
        return code, json.loads(raw)

    def stop(self) -> None:
        """SIGTERM, then wait (kill after a while)."""
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def start_dashboard(srv: Server, tmp: Path, *extra: str) -> Dash:
    """Start `kubelite dashboard` on a free port and read the URL it prints."""
    log = tmp / "dashboard.log"
    with open(log, "ab") as err:
        proc = subprocess.Popen([sys.executable, "-m", "kubelite.cli", "dashboard", "--kubeconfig", srv.kubeconfig,
                                 "--port", "0", *extra], stdout=subprocess.PIPE, stderr=err, text=True,
                                start_new_session=True)
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    deadline = time.monotonic() + 90  # imports and the first lists are slow on a busy 2-core machine
    try:
        while time.monotonic() < deadline:
            if not sel.select(timeout=0.5):
                if proc.poll() is not None:
                    break
                continue
            line = proc.stdout.readline()
            if not line:
                break
            m = URL_LINE.search(line)
            if m:
                return Dash(proc, m.group(1), m.group(3), log)
    finally:
        sel.close()
    proc.kill()
    proc.wait()
    raise AssertionError(f"dashboard printed no URL (exit {proc.returncode}):\n{log.read_text(errors='replace')}")


@pytest.fixture(scope="module")
def fake(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A whole cluster whose node runs the fake runtime."""
    srv = start_server(tmp_path_factory.mktemp("dash-cluster"), "--runtime", "fake")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def dash(fake: Server, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dash]:
    """A dashboard over every namespace of the fake cluster."""
    d = start_dashboard(fake, tmp_path_factory.mktemp("dash"))
    yield d
    d.stop()


@pytest.fixture
def dns(request: pytest.FixtureRequest, fake: Server) -> str:
    """A fresh namespace per test."""
    return create_namespace(fake, request, "d")


def deploy(srv: Server, ns: str, name: str = "web", replicas: int = 2) -> None:
    """kubectl create deployment, then wait for it to be rolled out."""
    srv.kubectl("-n", ns, "create", "deployment", name, f"--image={V1}", f"--replicas={replicas}", check=True)
    srv.kubectl("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=90s", timeout=120, check=True)


def set_image(srv: Server, ns: str, image: str, name: str = "web") -> None:
    """Roll out another image and wait for it."""
    srv.kubectl("-n", ns, "set", "image", f"deployment/{name}", f"kubernetes-bootcamp={image}", check=True)
    srv.kubectl("-n", ns, "rollout", "status", f"deployment/{name}", "--timeout=90s", timeout=120, check=True)


class Stream:
    """A reader of the dashboard's server-sent events."""

    def __init__(self, dash: Dash):
        self.resp = urllib.request.urlopen(dash.url("api/stream"), timeout=30)

    def close(self) -> None:
        """Drop the connection."""
        self.resp.close()

    def next_snapshot(self) -> dict[str, Any]:
        """The data of the next `rollouts` event."""
        event, data = "", []
        while True:
            line = self.resp.readline().decode()
            if not line:
                raise AssertionError("the stream ended")
            line = line.rstrip("\n")
            if line.startswith("event:"):
                event = line.partition(":")[2].strip()
            elif line.startswith("data:"):
                data.append(line.partition(":")[2].strip())
            elif not line and data:
                if event == "rollouts":
                    return json.loads("\n".join(data))
                event, data = "", []

    def wait_for(self, cond: Callable[[dict[str, Any]], Any], timeout: float = 60.0) -> Any:
        """Read snapshots until cond(snapshot) is truthy; return it."""
        deadline = time.monotonic() + timeout
        last: dict[str, Any] = {}
        while time.monotonic() < deadline:
            last = self.next_snapshot()
            got = cond(last)
            if got:
                return got
        raise AssertionError(f"no snapshot matched in {timeout}s; last: {json.dumps(last)[:2000]}")


def card(snap: dict[str, Any], ns: str, name: str = "web") -> dict[str, Any] | None:
    """One Deployment's entry in a snapshot."""
    return next((d for d in snap["deployments"] if d["namespace"] == ns and d["name"] == name), None)


# --- the token --------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["", "static/app.js", "api/rollouts", "api/stream", "nothing/here"])
def test_every_request_needs_the_token(dash: Dash, path: str) -> None:
    code, headers, body = dash.request(path, token=None)
    assert code == 401
    status = json.loads(body)
    assert (status["kind"], status["status"], status["reason"], status["code"]) == ("Status", "Failure",
                                                                                   "Unauthorized", 401)
    code, _, body = dash.request(path, token="not-the-token")
    assert code == 403
    assert json.loads(body)["reason"] == "Forbidden"


def test_the_token_in_an_authorization_header_is_accepted(dash: Dash) -> None:
    for scheme in ("token", "Bearer"):
        code, _, body = dash.request("api/rollouts", token=None, headers={"Authorization": f"{scheme} {dash.token}"})
        assert code == 200 and "deployments" in json.loads(body)
    code, _, _ = dash.request("api/rollouts", token=None, headers={"Authorization": "Bearer wrong"})
    assert code == 403


def test_the_page_carries_its_token_and_stays_local(dash: Dash) -> None:
    code, headers, body = dash.request("")
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    html = body.decode()
    assert f'content="{dash.token}"' in html and f"/static/app.js?token={dash.token}" in html
    assert "default-src 'self'" in headers["Content-Security-Policy"]
    assert headers["Referrer-Policy"] == "no-referrer" and headers["Cache-Control"] == "no-store"
    code, headers, body = dash.request("static/app.js")
    assert code == 200 and headers["Content-Type"].startswith("text/javascript") and b"EventSource" in body
    code, _, body = dash.request("static/../dashboard.py")
    assert code == 404 and json.loads(body)["code"] == 404


def test_the_dashboard_listens_on_loopback_only(dash: Dash) -> None:
    assert dash.base.startswith("http://127.0.0.1:")


# --- the live stream ------------------------------------------------------------------

def test_stream_shows_a_rollout_by_revision(fake: Server, dash: Dash, dns: str) -> None:
    stream = Stream(dash)
    try:
        deploy(fake, dns)
        first = stream.wait_for(lambda s: (c := card(s, dns)) and c["tone"] == "ok" and c)
        assert first["step"].startswith("rolled out: 2/2 pods of revision 1")
        [rs] = first["replicasets"]
        assert rs["new"] and rs["revision"] == 1 and rs["image"] == V1
        assert len(rs["pods"]) == 2 and all(p["state"] == "Ready" for p in rs["pods"])
        assert any(e["reason"] == "ScalingReplicaSet" for e in first["events"])

        fake.kubectl("-n", dns, "set", "image", "deployment/web", f"kubernetes-bootcamp={V2}", check=True)
        # While it rolls, the step is one of the controller's rolling-update steps, in words.
        moving = stream.wait_for(lambda s: (c := card(s, dns)) and len(c["replicasets"]) == 2 and c)
        assert moving["replicasets"][0]["new"] and moving["replicasets"][0]["image"] == V2
        done = stream.wait_for(lambda s: (c := card(s, dns)) and c["revision"] == 2 and c["tone"] == "ok" and c)
        assert done["step"].startswith("rolled out: 2/2 pods of revision 2")
        new, old = done["replicasets"]
        assert (new["revision"], new["new"], new["available"]) == (2, True, 2)
        assert (old["revision"], old["new"], old["desired"]) == (1, False, 0)
        assert done["canUndo"]
    finally:
        stream.close()


def test_a_deleted_deployment_leaves_the_page(fake: Server, dash: Dash, dns: str) -> None:
    deploy(fake, dns, "gone", replicas=1)
    stream = Stream(dash)
    try:
        stream.wait_for(lambda s: card(s, dns, "gone"))
        fake.kubectl("-n", dns, "delete", "deployment", "gone", check=True)
        stream.wait_for(lambda s: card(s, dns, "gone") is None)
    finally:
        stream.close()


# --- the buttons ------------------------------------------------------------------------

def test_pause_and_resume_patch_spec_paused(fake: Server, dash: Dash, dns: str) -> None:
    deploy(fake, dns)
    code, body = dash.act(dns, "web", "pause")
    assert (code, body["message"]) == (200, "deployment.apps/web paused")
    assert fake.kjson("-n", dns, "get", "deployment", "web")["spec"]["paused"] is True
    code, body = dash.act(dns, "web", "pause")
    assert (code, body["reason"], body["message"]) == (409, "Conflict", 'deployments.apps "web" is already paused')
    # kubectl sees the pause as its own.
    p = fake.kubectl("-n", dns, "rollout", "pause", "deployment/web")
    assert "already paused" in p.stdout + p.stderr
    code, body = dash.act(dns, "web", "resume")
    assert (code, body["message"]) == (200, "deployment.apps/web resumed")
    assert not fake.kjson("-n", dns, "get", "deployment", "web")["spec"].get("paused")
    code, body = dash.act(dns, "web", "resume")
    assert (code, body["message"]) == (409, 'deployments.apps "web" is not paused')


def test_undo_rolls_back_as_kubectl_rollout_undo(fake: Server, dash: Dash, dns: str) -> None:
    deploy(fake, dns)
    set_image(fake, dns, V2)
    # The controller copies the cause onto the current (revision 2) ReplicaSet only.
    fake.kubectl("-n", dns, "annotate", "deployment/web", "kubernetes.io/change-cause=to v2", check=True)
    fake.wait_for(lambda: re.search(r"^2\s+to v2$", fake.kubectl("-n", dns, "rollout", "history", "deployment/web").stdout,
                                    re.M), what="the change-cause on revision 2")
    code, body = dash.act(dns, "web", "undo")
    assert (code, body["message"]) == (200, "deployment.apps/web rolled back to revision 1")
    fake.kubectl("-n", dns, "rollout", "status", "deployment/web", "--timeout=90s", timeout=120, check=True)
    d = fake.kjson("-n", dns, "get", "deployment", "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == V1
    assert "pod-template-hash" not in d["spec"]["template"]["metadata"]["labels"]
    ann = d["metadata"]["annotations"]
    # Revision 1 is now revision 3, and its ReplicaSet has no change-cause to bring back.
    assert ann["deployment.kubernetes.io/revision"] == "3" and "kubernetes.io/change-cause" not in ann
    hist = fake.kubectl("-n", dns, "rollout", "history", "deployment/web", check=True).stdout
    assert re.search(r"^2\s+to v2$", hist, re.M) and re.search(r"^3\s+<none>$", hist, re.M)
    # Undo again goes back to v2, the previous revision, with its change-cause.
    code, body = dash.act(dns, "web", "undo")
    assert (code, body["message"]) == (200, "deployment.apps/web rolled back to revision 2")
    d = fake.kjson("-n", dns, "get", "deployment", "web")
    assert d["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    assert d["metadata"]["annotations"]["kubernetes.io/change-cause"] == "to v2"


def test_undo_refusals_are_status_errors(fake: Server, dash: Dash, dns: str) -> None:
    deploy(fake, dns)
    code, body = dash.act(dns, "web", "undo")
    assert (code, body["kind"], body["message"]) == (409, "Status", 'no rollout history found for deployment "web"')
    set_image(fake, dns, V2)
    code, body = dash.act(dns, "web", "undo", json.dumps({"toRevision": 7}).encode())
    assert (code, body["message"]) == (404, "unable to find specified revision 7 in history")
    for bad in (b"{", b"[1]", b'{"toRevision": "1"}', b'{"toRevision": true}'):
        code, body = dash.act(dns, "web", "undo", bad)
        assert (code, body["reason"]) == (400, "BadRequest"), bad
    code, body = dash.act(dns, "web", "undo", json.dumps({"toRevision": 2}).encode())
    assert (code, body["message"]) == (200, "skipped rollback (current template already matches revision 2)")
    fake.kubectl("-n", dns, "rollout", "pause", "deployment/web", check=True)
    code, body = dash.act(dns, "web", "undo")
    assert code == 409 and body["message"] == ("you cannot rollback a paused deployment; resume it first with "
                                               "'kubectl rollout resume deployment/web' and try again")
    assert fake.kjson("-n", dns, "get", "deployment", "web")["spec"]["template"]["spec"]["containers"][0]["image"] == V2
    code, body = dash.act(dns, "missing", "pause")
    assert (code, body["reason"]) == (404, "NotFound")
    code, body = dash.act(dns, "web", "delete")
    assert (code, body["reason"]) == (404, "NotFound")
    code, _, raw = dash.request(f"api/namespaces/{dns}/deployments/web/pause")  # GET
    assert (code, json.loads(raw)["reason"]) == (405, "MethodNotAllowed")
    code, _, raw = dash.request(f"api/namespaces/{dns}/deployments/web/undo", method="POST", body=b" " * 100_000,
                                token=None, headers={"Authorization": f"token {dash.token}"})
    assert (code, json.loads(raw)["reason"]) == (413, "RequestEntityTooLarge")


def test_a_namespaced_dashboard_acts_in_its_namespace_only(fake: Server, dns: str, tmp_path: Path,
                                                          request: pytest.FixtureRequest) -> None:
    other = create_namespace(fake, request, "o")
    deploy(fake, dns, replicas=1)
    deploy(fake, other, replicas=1)
    d = start_dashboard(fake, tmp_path, "-n", dns)
    try:
        code, _, raw = d.request("api/rollouts")
        snap = json.loads(raw)
        assert code == 200 and snap["namespace"] == dns
        assert {(c["namespace"], c["name"]) for c in snap["deployments"]} == {(dns, "web")}
        code, body = d.act(other, "web", "pause")
        assert code == 404
        assert not fake.kjson("-n", other, "get", "deployment", "web")["spec"].get("paused")
    finally:
        d.stop()
    assert d.proc.returncode == 0


# --- pure parts -----------------------------------------------------------------------------

def _rs(name: str, rev: str, image: str, uid: str = "d1", **ann: str) -> dict[str, Any]:
    annotations = {"deployment.kubernetes.io/revision": rev, **ann}
    owner = {"uid": uid, "controller": True, "kind": "Deployment"}
    template = {"metadata": {"labels": {"app": "w", "pod-template-hash": name}},
                "spec": {"containers": [{"name": "c", "image": image}]}}
    return {"metadata": {"name": name, "namespace": "n", "uid": "rs-" + name, "annotations": annotations,
                         "ownerReferences": [owner]},
            "spec": {"replicas": 0, "template": template}}


def _deployment(image: str, **spec: Any) -> dict[str, Any]:
    return {"metadata": {"name": "w", "namespace": "n", "uid": "d1",
                         "annotations": {"deployment.kubernetes.io/revision": "3", "keep": "me"}},
            "spec": {"replicas": 1, "template": {"metadata": {"labels": {"app": "w"}},
                                                 "spec": {"containers": [{"name": "c", "image": image}]}}, **spec}}


def test_plan_undo_picks_the_second_newest_revision() -> None:
    rss = [_rs("a", "1", "v1"), _rs("c", "3", "v3"), _rs("b", "2", "v2", **{"kubernetes.io/change-cause": "b"}),
           _rs("x", "9", "v9", uid="other"), _rs("bad", "x", "v0")]
    plan = plan_undo(_deployment("v3"), rss)
    assert plan.message == "deployment.apps/w rolled back to revision 2"
    assert plan.patch is not None
    ops = {op["path"]: op for op in plan.patch}
    template = ops["/spec/template"]["value"]
    assert template["spec"]["containers"][0]["image"] == "v2" and template["metadata"]["labels"] == {"app": "w"}
    # The Deployment keeps its revision; everything else copyable comes from the ReplicaSet.
    assert ops["/metadata/annotations"]["value"] == {"deployment.kubernetes.io/revision": "3",
                                                     "kubernetes.io/change-cause": "b"}
    assert pick_revision(_deployment("v3"), rss, 1)["metadata"]["name"] == "a"


def test_plan_undo_with_two_replicasets_of_one_revision_goes_by_revision_not_list_order() -> None:
    # "b" was made by hand (or adopted) with the current ReplicaSet's revision; the API lists by
    # name, so list order must not decide. The controller's last revision is 3 (two RSs carry
    # it), and of those the old one is the way back, as the controller's own rollback finds it.
    current, twin, older = _rs("c", "3", "v3"), _rs("b", "3", "v2b"), _rs("a", "2", "v2")
    for rss in itertools.permutations([current, twin, older]):
        plan = plan_undo(_deployment("v3"), list(rss))
        assert plan.message == "deployment.apps/w rolled back to revision 3", [r["metadata"]["name"] for r in rss]
        assert plan.patch is not None
        assert plan.patch[0]["value"]["spec"]["containers"][0]["image"] == "v2b"
    # Two old ReplicaSets of one revision: the newest created, whatever the order.
    old1 = _rs("o1", "2", "v2-old", **{"kubernetes.io/change-cause": "first"})
    old2 = _rs("o2", "2", "v2-new", **{"kubernetes.io/change-cause": "second"})
    old1["metadata"]["creationTimestamp"] = "2026-01-01T00:00:00Z"
    old2["metadata"]["creationTimestamp"] = "2026-01-02T00:00:00Z"
    for rss in itertools.permutations([_rs("c", "3", "v3"), old1, old2]):
        assert pick_revision(_deployment("v3"), list(rss), 0)["metadata"]["name"] == "o2"
        assert pick_revision(_deployment("v3"), list(rss), 2)["metadata"]["name"] == "o2"


def test_plan_undo_without_history_or_while_paused() -> None:
    with pytest.raises(Conflict, match="no rollout history found"):
        plan_undo(_deployment("v1"), [_rs("a", "1", "v1")])
    with pytest.raises(Conflict, match="cannot rollback a paused deployment"):
        plan_undo(_deployment("v2", paused=True), [_rs("a", "1", "v1"), _rs("b", "2", "v2")])
    assert plan_undo(_deployment("v1"), [_rs("a", "1", "v1"), _rs("b", "2", "v2")], 1).patch is None


def _event(name: str, kind: str, obj: str, when: str, reason: str = "R") -> dict[str, Any]:
    return {"metadata": {"name": name, "namespace": "n", "uid": "ev-" + name}, "reason": reason, "message": name,
            "involvedObject": {"kind": kind, "name": obj, "namespace": "n"}, "lastTimestamp": when}


def test_snapshot_groups_pods_and_events_by_revision() -> None:
    d = _deployment("v2")
    new = _rs("b", "2", "v2")
    pod = {"metadata": {"name": "b-x", "namespace": "n", "uid": "p1", "creationTimestamp": "2026-01-01T00:00:00Z",
                        "ownerReferences": [{"uid": "rs-b", "controller": True}]},
           "spec": {"nodeName": "node"},
           "status": {"phase": "Pending", "containerStatuses": [
               {"restartCount": 2, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}
    stranger = {"metadata": {"name": "other", "namespace": "n", "uid": "p2"}, "status": {"phase": "Running"}}
    events = [_event("e3", "Pod", "b-x", "2026-01-01T00:00:03Z", "BackOff"),
              _event("e1", "Deployment", "w", "2026-01-01T00:00:01Z", "ScalingReplicaSet"),
              _event("e2", "ReplicaSet", "b", "2026-01-01T00:00:02Z", "SuccessfulCreate"),
              _event("e4", "Pod", "other", "2026-01-01T00:00:04Z")]
    snap = snapshot([d], [_rs("a", "1", "v1"), new], [pod, stranger], events, namespace="n", server="s")
    [view] = snap["deployments"]
    assert [(rs["revision"], rs["new"]) for rs in view["replicasets"]] == [(2, True), (1, False)]
    [chip] = view["replicasets"][0]["pods"]
    assert (chip["short"], chip["state"], chip["failing"], chip["restarts"]) == ("x", "CrashLoopBackOff", True, 2)
    assert [e["message"] for e in view["events"]] == ["e1", "e2", "e3"]  # not the stranger's, oldest first
    assert view["events"][2]["object"] == "Pod/b-x"
    assert view["tone"] == "bad" and view["step"].startswith("stuck: new pods keep crashing")
    assert view["canUndo"]


def test_snapshot_survives_a_revision_that_is_not_a_number() -> None:
    d = _deployment("v1")
    d["metadata"]["annotations"]["deployment.kubernetes.io/revision"] = "seven"
    snap = snapshot([d], [_rs("a", "one", "v1")], [], [], namespace="", server="s")
    [view] = snap["deployments"]
    assert view["tone"] == "bad" and view["step"].startswith("cannot read this rollout")


# --- the page in a browser -------------------------------------------------------------------

CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"
PAUSED_RGB = (0xB7, 0x79, 0x1F)  # app.css --busy: the paused card's border and badge


def png_pixels(data: bytes) -> tuple[int, int, list[tuple[int, int, int]]]:
    """(width, height, RGB pixels) of an 8-bit RGB or RGBA PNG, as Chromium writes screenshots."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, b"", 0
    height = depth = color = 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        chunk = data[pos + 8:pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", chunk[:10])
        elif kind == b"IDAT":
            idat += chunk
        pos += 12 + length
    assert depth == 8 and color in (2, 6), f"unexpected PNG format {depth}/{color}"
    bpp = 3 if color == 2 else 4
    raw, stride = zlib.decompress(idat), width * bpp
    prev, i = bytearray(stride), 0
    out: list[tuple[int, int, int]] = []
    for _ in range(height):
        ftype, line = raw[i], bytearray(raw[i + 1:i + 1 + stride])
        i += 1 + stride
        for x in range(stride):  # undo the row filter (PNG spec, section 9)
            a = line[x - bpp] if x >= bpp else 0
            b, c = prev[x], prev[x - bpp] if x >= bpp else 0
            if ftype == 1:
                line[x] = (line[x] + a) & 0xFF
            elif ftype == 2:
                line[x] = (line[x] + b) & 0xFF
            elif ftype == 3:
                line[x] = (line[x] + (a + b) // 2) & 0xFF
            elif ftype == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out.extend(tuple(line[x:x + 3]) for x in range(0, stride, bpp))
        prev = line
    return width, height, out


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium under Selenium, offline, with a fresh profile."""
    assert os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER), \
        "the browser test needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)"
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager must not try to download a driver
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.TemporaryDirectory(prefix="dash-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1280,900", f"--user-data-dir={profile.name}"):
        opts.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        driver.quit()
        profile.cleanup()


def test_the_page_shows_a_rollout_and_its_pause_button_pauses_it(fake: Server, dash: Dash, dns: str,
                                                                  browser: Any, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    deploy(fake, dns, replicas=3)
    set_image(fake, dns, V2)
    browser.get(dash.url(""))
    wait = WebDriverWait(browser, 60, poll_frequency=0.2)
    sel = f'section[data-deployment="{dns}/web"]'
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f"{sel} .step.tone-ok"))
    section = browser.find_element(By.CSS_SELECTOR, sel)
    assert section.find_element(By.CSS_SELECTOR, ".step").text.startswith("▶ rolled out: 3/3 pods of revision 2")
    rows = section.find_elements(By.CSS_SELECTOR, "tr[data-revision]")
    assert [r.get_attribute("data-revision") for r in rows] == ["2", "1"]
    assert V2 in rows[0].text and V1 in rows[1].text
    assert len(section.find_elements(By.CSS_SELECTOR, '.pod[data-state="Ready"]')) == 3
    assert "ScalingReplicaSet" in section.find_element(By.CSS_SELECTOR, ".events").text
    assert browser.find_element(By.ID, "connection").text == "live"
    browser.execute_script("arguments[0].scrollIntoView()", section)
    before = browser.get_screenshot_as_png()

    section.find_element(By.CSS_SELECTOR, 'button[data-action="pause"]').click()
    fake.wait_for(lambda: fake.kjson("-n", dns, "get", "deployment", "web")["spec"].get("paused") is True,
                  timeout=30, what="spec.paused set by the page's Pause button")
    wait.until(lambda b: b.find_elements(By.CSS_SELECTOR, f"{sel}.paused .badge-paused"))
    assert "paused" in browser.find_element(By.ID, "notice").text
    assert section.find_element(By.CSS_SELECTOR, 'button[data-action="pause"]').get_attribute("disabled")
    assert section.find_element(By.CSS_SELECTOR, 'button[data-action="resume"]').is_enabled()
    assert not section.find_element(By.CSS_SELECTOR, 'button[data-action="undo"]').is_enabled()
    after = browser.get_screenshot_as_png()
    (tmp_path / "dashboard.png").write_bytes(after)

    width, height, pixels = png_pixels(after)
    vw, vh, ratio = browser.execute_script("return [innerWidth, innerHeight, devicePixelRatio]")
    assert (width, height) == (round(vw * ratio), round(vh * ratio))
    counts: dict[tuple[int, int, int], int] = {}
    for px in pixels:
        counts[px] = counts.get(px, 0) + 1
    background = max(counts.values())
    assert len(counts) > 50 and background < 0.9 * len(pixels), "the screenshot is (nearly) blank"
    # The paused card is drawn: a border of the paused colour that was not there before.
    assert counts.get(PAUSED_RGB, 0) > 1000
    assert png_pixels(before)[2].count(PAUSED_RGB) < counts[PAUSED_RGB] // 2
