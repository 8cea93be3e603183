"""``kubelite component NAME``: one of the server's components in a process of its own.

``kubelite server --separate-processes`` starts these as its children (see childproc.py); they
are not meant to be run by hand, so the sub-command is left out of ``kubelite --help``.
"""
from __future__ import annotations

import argparse
import asyncio

from kubelite.childproc import SEPARABLE, die_with_parent, serve_component
from kubelite.cli_run import run_main


def cmd_component(args: argparse.Namespace) -> int:
    """Run one component against the API server until SIGTERM."""
    die_with_parent(args.parent_pid)
    return run_main(_run(args))


async def _run(args: argparse.Namespace) -> None:
    from kubelite import version
    from kubelite.client.rest import Client, ClientConfig
    program = version.CONTROLLER_MANAGER if args.name == "controllers" else version.SCHEDULER
    client = Client(ClientConfig(server=args.server, ca_file=args.ca_file, cert_file=args.cert_file,
                                 key_file=args.key_file, user_agent=version.user_agent(program)))
    try:
        if args.name == "controllers":
            from kubelite.controllers.clientbuilder import ServiceAccountClients
            from kubelite.controllers.manager import run_controller_manager
            accounts = ServiceAccountClients(client)

            async def controllers(stop: asyncio.Event, synced: asyncio.Event) -> None:
                try:
                    await run_controller_manager(client, stop=stop, identity=args.identity, synced=synced,
                                                 leader_elect=args.leader_elect, client_for=accounts.client_for)
                finally:
                    await accounts.close()
            await serve_component("controller-manager", controllers)
        else:
            from kubelite.client.leaderelection import run_elected
            from kubelite.scheduler.scheduler import LEASE_NAME, run_scheduler

            async def scheduler(stop: asyncio.Event, synced: asyncio.Event) -> None:
                synced.set()  # the scheduler's readiness is not part of the server's /readyz
                if args.leader_elect:
                    await run_elected(client, LEASE_NAME, args.identity, stop,
                                      lambda inner: run_scheduler(client, stop=inner))
                else:
                    await run_scheduler(client, stop=stop)
            await serve_component("scheduler", scheduler)
    finally:
        await client.close()


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``kubelite component`` (hidden from the command list)."""
    c = sub.add_parser("component")
    c.add_argument("name", choices=SEPARABLE)
    c.add_argument("--server", required=True)
    c.add_argument("--ca-file", required=True)
    c.add_argument("--cert-file", required=True)
    c.add_argument("--key-file", required=True)
    c.add_argument("--identity", required=True, help="the host part of the leader-election identity")
    c.add_argument("--parent-pid", type=int, required=True, help="the server's pid: the component stops with it")
    c.add_argument("--no-leader-elect", dest="leader_elect", action="store_false")
    c.set_defaults(func=cmd_component)
