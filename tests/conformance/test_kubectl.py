"""The real kubectl 1.33 on every resource: create, get (Table and YAML), server-side apply,
delete. kubectl resolves each resource through the server's discovery, asks for Tables,
and prints warnings and errors the way users see them."""
from __future__ import annotations

import json

import pytest
import yaml

from .apiclient import Resource


def kubectl_name(res: Resource) -> str:
    """The fully qualified resource name kubectl takes (``deployments.v1.apps``)."""
    return f"{res.plural}.{res.version}.{res.group}" if res.group else res.plural


@pytest.mark.verbs("create", "get", "list", "patch", "delete")
def test_kubectl_create_get_apply_delete(kit, conformance):
    srv, ref = conformance.srv, kubectl_name(kit.res)
    name = kit.name()
    kit.prereqs(name)
    p = srv.kubectl("create", "-n", kit.ns, "-f", "-", "-o", "name", input=json.dumps(kit.obj(name)), check=True)
    assert p.stdout.strip().endswith(f"/{name}")
    if not kit.res.namespaced:
        kit.made.append((kit.res, name))
    # A Table, printed; -o wide shows every column (events keep NAME among the wide ones).
    table = srv.kubectl("get", ref, "-n", kit.ns, "-l", kit.selector, "-o", "wide", check=True).stdout.splitlines()
    assert "NAME" in table[0].split() and any(name in line.split() for line in table[1:]), table
    applied = kit.obj(name, {"applied": "yes"})
    p = srv.kubectl("apply", "--server-side", "--field-manager", "conformance", "-n", kit.ns, "-f", "-",
                    "-o", "yaml", input=json.dumps(applied), check=True)
    assert yaml.safe_load(p.stdout)["metadata"]["labels"]["applied"] == "yes"
    p = srv.kubectl("delete", ref, name, "-n", kit.ns, "--wait=false", check=True)
    assert "deleted" in p.stdout
