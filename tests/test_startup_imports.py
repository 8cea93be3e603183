"""What starting ``kubelite server`` imports: the API server alone must not pay for the parts it
does not run (a cold ``--api-only`` start is what a test fixture waits for).

Each check runs a fresh interpreter, imports what the ``kubelite`` command and the test
fixture's warm launcher import, and lists the heavy modules that got loaded.
"""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Loaded only by the components --api-only leaves out, or when an expression is compiled.
HEAVY = ("dns", "celpy", "kubelite.dns.component", "kubelite.dns.forward", "kubelite.ingress.controller",
         "kubelite.controllers.manager", "kubelite.node.agent", "kubelite.scheduler.scheduler", "grpc",
         "kubelite.store.etcd")


def loaded_after(code: str, heavy: tuple[str, ...] = HEAVY) -> list[str]:
    """The ``heavy`` modules present in sys.modules after running ``code`` in a new interpreter."""
    probe = (f"{code}\nimport json, sys\n"
             f"heavy = {heavy!r}\n"
             "print(json.dumps(sorted(m for m in sys.modules if m in heavy)))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120,
                         check=True)
    found: list[str] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def test_the_kubelite_command_imports_no_component_code() -> None:
    """Importing the command line (and with it the server) loads neither DNS, ingress, CEL nor etcd."""
    assert loaded_after("import kubelite.cli") == []


def test_the_fixture_launcher_warms_only_the_api_server() -> None:
    """The warm launcher's imports (what every fixture cluster forks from) stay as light."""
    assert loaded_after("import kubelite.cli, kubelite.server, kubelite.apiserver.reset") == []


def test_the_dns_and_ingress_components_still_use_their_options() -> None:
    """The option classes moved to light modules are the ones the components take."""
    from kubelite.dns import component, options
    from kubelite.ingress import options as ingress_options
    from kubelite.server import ServerOptions

    opts = ServerOptions(data_dir="/nonexistent")
    assert isinstance(opts.dns, options.DNSOptions) and component.DNSOptions is options.DNSOptions
    assert isinstance(opts.ingress, ingress_options.IngressOptions)
    assert opts.dns.ttl == options.DEFAULT_TTL == 5


# What only `kubelite server` needs: the API server, its store and its controllers.
SERVER_SIDE = ("kubelite.server", "kubelite.apiserver.app", "kubelite.apiserver.registry", "kubelite.store.sqlite",
               "kubelite.controllers.manager")


def test_the_client_commands_do_not_import_the_api_server() -> None:
    """`kubelite agent` (a node on another host) and the other client commands are API clients: parsing
    their command line and loading the agent's own code brings in none of the server side."""
    code = ("import argparse, kubelite.cli, kubelite.cli_extra\n"
            "import kubelite.node.agent, kubelite.client.rest, kubelite.node.credentials\n"
            "kubelite.cli_extra.register(argparse.ArgumentParser().add_subparsers())")
    assert loaded_after(code, SERVER_SIDE) == []
