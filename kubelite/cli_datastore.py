"""The datastore flags of ``kubelite server`` and ``kubelite datastore migrate`` (SQLite → etcd)."""
from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import TYPE_CHECKING

from kubelite.startup import StartupError, default_data_dir

if TYPE_CHECKING:
    from kubelite.server import DatastoreOptions

ENV_ENDPOINT = "KUBELITE_DATASTORE_ENDPOINT"


SERVER_HELP = ("keep the cluster's state in etcd at these client URLs (https://host:2379,…; http:// for a plaintext "
               "etcd) instead of the embedded SQLite store (also $" + ENV_ENDPOINT + ")")


def datastore_flags(p: argparse.ArgumentParser, endpoint_flag: str = "--datastore-endpoint",
                    endpoint_help: str = SERVER_HELP) -> None:
    """k3s's flags naming an etcd cluster and the client's TLS files."""
    p.add_argument(endpoint_flag, dest="datastore_endpoint", default=os.environ.get(ENV_ENDPOINT, ""),
                   metavar="URL[,URL…]", help=endpoint_help)
    p.add_argument("--datastore-cafile", default="", metavar="FILE", help="CA bundle that signed etcd's serving certificates")
    p.add_argument("--datastore-certfile", default="", metavar="FILE", help="client certificate for etcd")
    p.add_argument("--datastore-keyfile", default="", metavar="FILE", help="client key for etcd")
    p.add_argument("--event-ttl", type=float, default=3600.0, metavar="SECONDS",
                   help="with etcd: how long Events are kept (default 3600, as kube-apiserver; 0 keeps them)")


ENV_TOKEN = "KUBELITE_TOKEN"


def token_flag(p: argparse.ArgumentParser) -> None:
    """k3s's ``--token`` of a server: the cluster secret that opens the bootstrap data in etcd."""
    p.add_argument("--token", default=os.environ.get(ENV_TOKEN, ""), metavar="TOKEN",
                   help="with --datastore-endpoint: the cluster's join token (`kubelite token` on a server of it "
                        "prints it; also $" + ENV_TOKEN + "). The first server on an etcd stores the cluster CA and "
                        "keys there, encrypted with it; later servers given it take them from there")


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``kubelite datastore``."""
    d = sub.add_parser("datastore", help="move the cluster's state between datastores")
    dsub = d.add_subparsers(dest="datastore_cmd", required=True)
    m = dsub.add_parser("migrate", help="copy every object of a data directory's SQLite store into an empty etcd")
    m.add_argument("--data-dir", default=default_data_dir(), help="the data directory (its server must be stopped)")
    datastore_flags(m, "--to", "the etcd to copy into (client URLs, as --datastore-endpoint takes them)")
    m.set_defaults(func=cmd_migrate)


def cmd_migrate(args: argparse.Namespace) -> int:
    """Copy DATA_DIR's SQLite store into etcd; print what was done or why not."""
    if not args.datastore_endpoint:
        print("kubelite datastore migrate: --to URL is required (the etcd to copy into)", file=sys.stderr)
        return 2
    from kubelite.server import DatastoreOptions
    ds = DatastoreOptions(args.datastore_endpoint, args.datastore_cafile, args.datastore_certfile, args.datastore_keyfile,
                          args.event_ttl)
    try:
        n = asyncio.run(migrate(os.path.abspath(args.data_dir), ds))
    except StartupError as e:
        print(f"kubelite datastore migrate: {e}", file=sys.stderr)
        return 1
    print(f"copied {n} objects into {ds.endpoint}; start the cluster with:\n"
          f"  kubelite server --data-dir {args.data_dir} --datastore-endpoint {ds.endpoint}", flush=True)
    return 0


async def migrate(data_dir: str, ds: DatastoreOptions) -> int:
    """Copy every live key of the SQLite store into etcd (which must hold no cluster yet); the count."""
    from kubelite.server import _lock, open_store
    from kubelite.store.sqlite import SqliteStore
    path = os.path.join(data_dir, "db", "state.db")
    if not os.path.isfile(path):
        raise StartupError(f"{path}: no SQLite store to migrate")
    lock = _lock(data_dir)  # no server may write the store while it is copied
    try:
        source = SqliteStore(path)
        target = await open_store(data_dir, ds)
        try:
            existing, _ = await target.list("/registry/")
            if existing:
                raise StartupError(f"{ds.endpoint} already holds {len(existing)} keys under /registry/; "
                                   "migrate into an empty etcd")
            items, _ = await source.list("/")
            for kv in items:
                # Values are copied as they are; each object gets etcd's revision of its
                # create as its new resourceVersion.
                await target.create(kv.key, kv.value)
            return len(items)
        finally:
            await target.close()
            await source.close()
    finally:
        lock.close()
