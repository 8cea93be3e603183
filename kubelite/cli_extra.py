"""Sub-commands beyond ``server`` (agent, image, rollout, dashboard), registered on the main parser."""
from __future__ import annotations

import argparse
import ipaddress
import os
import shlex
import sys
from pathlib import Path

from kubelite import jointoken, version
from kubelite.cli_run import RUNTIME_HELP, RUNTIMES, pick_runtime, run_main
from kubelite.images import reference
from kubelite.images.store import ImageConfig, ImageStore, default_root
from kubelite.startup import default_data_dir


def cmd_agent(args: argparse.Namespace) -> int:
    """Join this machine to a cluster as a node."""
    import asyncio
    import logging
    import signal

    from kubelite.client.errors import StatusError
    from kubelite.client.rest import Client, ClientConfig, wait_ready
    from kubelite.images import gc as image_gc
    from kubelite.node.agent import Agent, AgentOptions, default_node_name
    from kubelite.node.credentials import ensure_credentials
    from kubelite.startup import StartupError
    log = logging.getLogger("kubelite.node")
    try:
        gc_policy = image_gc.policy_from_args(args)
    except image_gc.InvalidGCConfig as e:
        print(f"kubelite: {e}", file=sys.stderr)
        return 1

    async def main() -> None:
        try:
            join = jointoken.parse(args.token)
        except jointoken.JoinTokenError as e:
            raise StartupError(f"--token: {e}") from None
        servers = [u.strip().rstrip("/") for u in args.server.split(",") if u.strip()]
        if not servers:
            raise StartupError("--server: give the API server's URL (several, comma-separated, for failover)")
        server, fallback = servers[0], tuple(servers[1:])
        data_dir = os.path.abspath(args.data_dir)
        os.makedirs(data_dir, exist_ok=True)
        if join.ca_hash is not None and not args.insecure_skip_tls_verify:
            args.ca_file = await pinned_ca_file(servers, join, args.ca_file, data_dir)
        if not args.ca_file and not args.insecure_skip_tls_verify:
            raise StartupError("--ca-file is required (the server's DATA_DIR/tls/ca.crt) with a bare token; "
                               "or give the K10 join token (`kubelite token`), which pins the CA by hash; "
                               "or --insecure-skip-tls-verify to skip checking the server")
        runtime = pick_runtime(args.runtime, args.network, data_dir)
        nodes = simulated_nodes(args.node_name or default_node_name(), args.node_ip, args.node_count, runtime)
        # The token only buys each node's certificates (kubelite.node.credentials); the
        # agent and its proxy then act as system:node:<name> and system:kube-proxy.
        bootstrap = Client(ClientConfig(server=server, ca_file=args.ca_file, token=join.secret,
                                        insecure=args.insecure_skip_tls_verify,
                                        user_agent=version.user_agent(version.KUBELET),
                                        fallback_servers=fallback))
        try:
            await wait_ready(bootstrap, timeout=30)
            # One node keeps its credentials in DATA_DIR/pki as always; simulated ones each in a directory of its own.
            creds = await asyncio.gather(*(
                ensure_credentials(bootstrap, name, data_dir if len(nodes) == 1 else os.path.join(data_dir, "nodes", name),
                                   args.ca_file) for name, _ in nodes))
        except StatusError as e:
            raise StartupError(f"the API server at {args.server} refused the node token: {e.message}") from None
        except Exception as e:
            raise StartupError(f"cannot reach the API server at {args.server}: {e}") from None
        finally:
            await bootstrap.close()

        def client(cert: str, key: str, program: str = version.KUBELET) -> Client:
            return Client(ClientConfig(server=server, ca_file=args.ca_file, cert_file=cert, key_file=key,
                                       insecure=args.insecure_skip_tls_verify, user_agent=version.user_agent(program),
                                       fallback_servers=fallback))
        kubelets = [client(c.node_cert, c.node_key) for c in creds]
        # Fake pods have loopback addresses nothing listens on: a fake node runs no Service proxy.
        kube_proxy = client(creds[0].proxy_cert, creds[0].proxy_key, version.KUBE_PROXY) if runtime != "fake" else None
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        from kubelite.node import joinnet

        async def close() -> None:
            for c in kubelets + ([kube_proxy] if kube_proxy else []):
                await c.close()
        try:
            net = await joinnet.discover(kubelets[0], args.service_cidr)
        except Exception as e:
            await close()
            raise StartupError(f"cannot read the cluster's Services from {args.server}: {e}") from None
        why = joinnet.kernel_path_missing(runtime, args.network, net.service_cidr)
        if why and kube_proxy is not None:
            log.info("services: userspace proxy (the nftables path is off: %s)", why)

        def options(name: str, ip: str) -> AgentOptions:
            return AgentOptions(node_name=name, data_dir=data_dir, runtime=runtime,
                                network=args.network, node_ip=ip,
                                ca_file=args.ca_file, port=args.port, offline=args.offline,
                                registry_config=args.registry_config, pod_max_pids=args.pod_max_pids,
                                service_routing=not why, pod_cidr_from_server=True,
                                cluster_dns=[net.cluster_dns] if net.cluster_dns else [],
                                image_gc=gc_policy, image_gc_period=args.image_gc_period)
        images = None
        if len(nodes) > 1:
            # Simulated nodes share one image store (DATA_DIR/images), its built-in images built once.
            images = ImageStore(default_root(data_dir))
            await asyncio.to_thread(images.preload_builtins)
        agents = [Agent(kubelet, options(name, ip), images=images)
                  for kubelet, (name, ip) in zip(kubelets, nodes, strict=True)]
        runs = [a.run(stop) for a in agents]
        if kube_proxy is not None:
            # A node runs its agent and its service proxy (with the NetworkPolicy enforcer on the
            # kernel path), as kubelet + kube-proxy + a network policy agent.
            name, ip = nodes[0]
            runs.append(joinnet.run_node_proxy(kube_proxy, node_name=name, node_ip=ip, data_dir=data_dir,
                                               runtime=runtime, service_cidr=net.service_cidr, kernel=not why,
                                               stop=stop, bridge=agents[0].slot.bridge))
        try:
            await asyncio.gather(*runs)
        finally:
            await close()
    return run_main(main())


def simulated_nodes(name: str, first_ip: str, count: int, runtime: str) -> list[tuple[str, str]]:
    """(name, InternalIP) of each node `kubelite agent` runs: itself, or with ``--node-count N``
    N fake nodes NAME-001 … on consecutive loopback addresses from ``--node-ip``."""
    from kubelite.startup import StartupError
    if count == 1:
        return [(name, first_ip)]
    if count < 1:
        raise StartupError(f"--node-count must be at least 1, got {count}")
    if runtime != "fake":
        raise StartupError("--node-count above 1 needs --runtime fake (only fake nodes share a process)")
    try:
        first = ipaddress.IPv4Address(first_ip)
    except ValueError:
        raise StartupError(f"--node-ip {first_ip!r} is not an IPv4 address") from None
    loopback = ipaddress.IPv4Network("127.0.0.0/8")
    # Safety: every node's agent API listens on its address, which must stay on this machine.
    if first not in loopback or first + (count - 1) not in loopback:
        raise StartupError(f"--node-count {count} from --node-ip {first_ip} leaves 127.0.0.0/8; "
                           "simulated nodes listen on consecutive loopback addresses")
    return [(f"{name}-{i + 1:03d}", str(first + i)) for i in range(count)]


async def pinned_ca_file(servers: list[str], join: jointoken.JoinToken, ca_file: str | None, data_dir: str) -> str:
    """The CA file to trust: ``ca_file`` if its hash is the token's, else the /cacerts of the
    first server that answers, when its hash is (written under ``data_dir``); StartupError
    otherwise. The bootstrap token is never sent before the CA is pinned."""
    import ssl

    import aiohttp

    from kubelite.startup import StartupError
    if ca_file:
        if not join.matches(Path(ca_file).read_bytes()):
            raise StartupError(f"--ca-file {ca_file} is not the CA the join token pins (its SHA-256 differs)")
        return ca_file
    # Unverified on purpose: what comes back is checked against the hash before any use.
    insecure = ssl.create_default_context()
    insecure.check_hostname = False
    insecure.verify_mode = ssl.CERT_NONE
    body, status, url, failures = b"", 0, "", []
    for server in servers:
        url = server + "/cacerts"
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session, \
                    session.get(url, ssl=insecure) as resp:
                body = await resp.read()
                status = resp.status
                break
        except (aiohttp.ClientError, OSError, TimeoutError) as e:
            failures.append(f"{url}: {e}")
    else:
        raise StartupError(f"cannot fetch the cluster CA: {'; '.join(failures)}")
    if status != 200 or not join.matches(body):
        raise StartupError(f"the CA served at {url} is not the one the join token pins "
                           f"(HTTP {status}); the token was not sent")
    path = os.path.join(data_dir, "server-ca.crt")
    Path(path).write_bytes(body)
    return path


def cmd_token(args: argparse.Namespace) -> int:
    """Print the join token of a server's data directory."""
    tls = os.path.join(os.path.abspath(args.data_dir), "tls")
    try:
        with open(os.path.join(tls, "ca.crt"), "rb") as f:
            ca = f.read()
        token = jointoken.read_bootstrap_token(os.path.join(tls, "tokens.csv"))
    except OSError as e:
        print(f"kubelite: no cluster credentials in {args.data_dir} ({e.strerror}); start `kubelite server` "
              f"there first", file=sys.stderr)
        return 1
    print(jointoken.format_token(ca, token))
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    """Add the extra sub-commands."""
    a = sub.add_parser("agent", help="join this machine to a kubelite cluster as a node")
    a.add_argument("--server", required=True,
                   help="the API server URL, e.g. https://10.0.0.1:6443; several, comma-separated, are tried in "
                        "turn when the one in use cannot be reached")
    a.add_argument("--token", required=True,
                   help="the join token `kubelite token` prints on the server (K10…, pins the cluster CA), "
                        "or the bare bootstrap token (first field of DATA_DIR/tls/tokens.csv) with --ca-file")
    a.add_argument("--ca-file", default=None, help="the cluster CA certificate (server's DATA_DIR/tls/ca.crt)")
    a.add_argument("--insecure-skip-tls-verify", action="store_true")
    a.add_argument("--node-name", default="")
    a.add_argument("--node-ip", default="127.0.0.1", help="the address the API server and proxies reach this node at")
    a.add_argument("--port", type=int, default=0, help="agent API port (0: any free port)")
    a.add_argument("--node-count", type=int, default=1, metavar="N",
                   help="with --runtime fake: simulate N nodes in this one process (kwok-like), named "
                        "NODE_NAME-001 … on consecutive loopback addresses from --node-ip (default 1)")
    a.add_argument("--service-cidr", default="",
                   help="the server's service range (default: read from the kubernetes Service's ClusterIP)")
    a.add_argument("--data-dir", default=os.path.join(os.path.expanduser("~"), ".kubelite-agent"))
    a.add_argument("--runtime", choices=RUNTIMES, default="auto", help=RUNTIME_HELP)
    a.add_argument("--pod-max-pids", type=int, default=None, metavar="N",
                   help="the pids limit of each pod (oci runtime; default 4096)")
    a.add_argument("--network", choices=["auto", "host", "netns"], default="auto")
    a.add_argument("--offline", action="store_true",
                   help="contact no registry off this machine, resolve no registry name (also KUBELITE_OFFLINE=1)")
    a.add_argument("--registry-config", default="", metavar="FILE",
                   help="registries.yaml as k3s reads it (default DATA_DIR/registries.yaml)")
    from kubelite.images import gc as image_gc
    image_gc.add_flags(a)
    a.set_defaults(func=cmd_agent)
    t = sub.add_parser("token", help="print the join token for `kubelite agent --token` (k3s's K10 form)")
    t.add_argument("--data-dir", default=default_data_dir(), help="the server's data directory")
    t.set_defaults(func=cmd_token)
    _register_rollout(sub)
    _register_dashboard(sub)
    _register_image(sub)
    k = sub.add_parser("killall", help="stop every container of the oci runtime and remove the pod network "
                                       "(containers outlive the server, as with k3s)")
    k.add_argument("--data-dir", default=default_data_dir(), help="default ~/.kubelite or $KUBELITE_DATA_DIR")
    k.set_defaults(func=_killall)


def _killall(args: argparse.Namespace) -> int:
    """Stop every oci container of a data directory and remove its pod network."""
    from kubelite.node.runtime.oci.killall import killall
    if os.geteuid() != 0:
        print("kubelite: killall needs root", file=sys.stderr)
        return 1
    pods, containers = killall(args.data_dir)
    print(f"stopped {containers} container(s) and removed {pods} pod sandbox(es)")
    return 0


# --- rollout ---------------------------------------------------------------------------

def _register_rollout(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("rollout", help="watch a Deployment roll out, or wait for it to finish")
    rsub = r.add_subparsers(dest="rollout_command", required=True)
    w = rsub.add_parser("watch", help="live view of a rolling update: ReplicaSets, pods, the controller's step")
    w.add_argument("target", metavar="deployment/NAME")
    w.add_argument("-n", "--namespace", default="", help="namespace (default: the kubeconfig context's, or default)")
    w.add_argument("--kubeconfig", default="", help="default $KUBECONFIG, else ~/.kubelite/kubeconfig")
    w.add_argument("--once", action="store_true", help="print one snapshot and exit")
    w.set_defaults(func=_rollout_watch)
    st = rsub.add_parser("status", help="wait for a rollout like `kubectl rollout status`, but exit 1 with the pods' "
                                        "reason as soon as the new pods fail or the rollout was rolled back")
    st.add_argument("target", metavar="deployment/NAME")
    st.add_argument("-n", "--namespace", default="", help="namespace (default: the kubeconfig context's, or default)")
    st.add_argument("--kubeconfig", default="", help="default $KUBECONFIG, else ~/.kubelite/kubeconfig")
    st.add_argument("--timeout", default="0", help="give up after this long (e.g. 90s, 2m; default 0: never)")
    st.set_defaults(func=_rollout_status)


def _rollout_status(args: argparse.Namespace) -> int:
    from kubelite.ui.rollout_status import cmd_status
    return cmd_status(args)


def _rollout_watch(args: argparse.Namespace) -> int:
    from kubelite.ui.rollout import cmd_watch
    return cmd_watch(args)


def _register_dashboard(sub: argparse._SubParsersAction) -> None:
    d = sub.add_parser("dashboard", help="a live web page of every Deployment's rollout, with pause/resume/undo")
    d.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default 0: any free port)")
    d.add_argument("-n", "--namespace", default="", help="show one namespace only (default: all namespaces)")
    d.add_argument("--kubeconfig", default="", help="default $KUBECONFIG, else ~/.kubelite/kubeconfig")
    d.set_defaults(func=_dashboard)


def _dashboard(args: argparse.Namespace) -> int:
    from kubelite.ui.dashboard import cmd_dashboard
    return cmd_dashboard(args)


# --- image -----------------------------------------------------------------------------

def _register_image(sub: argparse._SubParsersAction) -> None:
    i = sub.add_parser("image", help="the local image store: pull from a registry, import a directory, list images")
    isub = i.add_subparsers(dest="image_command", required=True)
    imp = isub.add_parser("import", help="build a one-layer image from a directory")
    imp.add_argument("name", metavar="NAME:TAG")
    imp.add_argument("directory", metavar="DIR")
    imp.add_argument("--cmd", required=True, help='the command, split like a shell would: --cmd "python3 app.py"')
    imp.add_argument("--entrypoint", default="", help="optional entrypoint, split like --cmd")
    imp.add_argument("--env", action="append", default=[], metavar="K=V", help="image environment (repeatable)")
    imp.add_argument("--workdir", default="/", help="working directory inside the image (default /)")
    imp.add_argument("--port", action="append", type=int, default=[], metavar="N", help="exposed port (repeatable)")
    imp.add_argument("--data-dir", default=default_data_dir(), help="default ~/.kubelite or $KUBELITE_DATA_DIR")
    imp.set_defaults(func=_image_import)
    pl = isub.add_parser("pull", help="pull an image from a registry into the store the node runs from (like crictl pull)")
    pl.add_argument("ref", metavar="REF", help="image reference: nginx, 127.0.0.1:5000/team/app:1.0, repo@sha256:…")
    pl.add_argument("--creds", default="", metavar="USER:PASS",
                    help="credentials for the image's registry (otherwise ~/.docker/config.json, if it has some)")
    pl.add_argument("--offline", action="store_true",
                    help="contact no registry off this machine, resolve no registry name (also KUBELITE_OFFLINE=1)")
    pl.add_argument("--registry-config", default="", metavar="FILE",
                    help="registries.yaml as k3s reads it (default DATA_DIR/registries.yaml)")
    pl.add_argument("--data-dir", default=default_data_dir(), help="default ~/.kubelite or $KUBELITE_DATA_DIR")
    pl.set_defaults(func=_image_pull)
    ls = isub.add_parser("ls", help="list images (like crictl images)")
    ls.add_argument("--data-dir", default=default_data_dir(), help="default ~/.kubelite or $KUBELITE_DATA_DIR")
    ls.add_argument("-q", "--quiet", action="store_true", help="only image IDs")
    ls.set_defaults(func=_image_ls)


def _store(data_dir: str) -> ImageStore:
    return ImageStore(default_root(os.path.abspath(data_dir)))


def _image_import(args: argparse.Namespace) -> int:
    env: dict[str, str] = {}
    for item in args.env:
        k, sep, v = item.partition("=")
        if not sep or not k:
            print(f"kubelite: --env {item!r}: expected K=V", file=sys.stderr)
            return 2
        env[k] = v
    cmd = shlex.split(args.cmd)
    if not cmd:
        print("kubelite: --cmd must not be empty", file=sys.stderr)
        return 2
    try:
        image = _store(args.data_dir).import_dir(args.name, args.directory, cmd, env, workdir=args.workdir,
                                                 ports=args.port or None,
                                                 entrypoint=shlex.split(args.entrypoint) or None)
    except (FileNotFoundError, reference.InvalidReference) as e:
        print(f"kubelite: {e}", file=sys.stderr)
        return 1
    print(f"imported {image.ref} ({image.id.partition(':')[2][:13]}, {human_size(image.size)})")
    return 0


def _image_pull(args: argparse.Namespace) -> int:
    import asyncio
    import base64
    import json

    from kubelite.images import reference
    from kubelite.images.offline import offline_from_env
    from kubelite.images.pull import Puller
    from kubelite.images.registries import RegistryConfig, RegistryConfigError

    data_dir = os.path.abspath(args.data_dir)
    try:
        ref = reference.parse(args.ref)
        config = RegistryConfig.load(args.registry_config or os.path.join(data_dir, "registries.yaml"))
    except (reference.InvalidReference, RegistryConfigError) as e:
        print(f"kubelite: {e}", file=sys.stderr)
        return 1
    secrets = []
    if args.creds:
        # The same shape as a kubernetes.io/dockerconfigjson Secret, keyed by the image's registry.
        auth = {"auths": {ref.domain: {"auth": base64.b64encode(args.creds.encode()).decode()}}}
        secrets.append({"metadata": {"name": "--creds"},
                        "data": {".dockerconfigjson": base64.b64encode(json.dumps(auth).encode()).decode()}})
    puller = Puller(_store(data_dir), offline=args.offline or offline_from_env(), config=config)
    from kubelite.images.store import ImageNotFound
    try:
        image = asyncio.run(puller.pull(args.ref, secrets))
    except ImageNotFound as e:
        print(f"kubelite: pulling image: {e}", file=sys.stderr)
        return 1
    print(f"Image is up to date for {image.id}")
    return 0


def human_size(n: int) -> str:
    """Sizes as crictl prints them (units of 1000, 3 significant digits: 5.1kB, 72.8MB)."""
    size, unit = float(n), "B"
    for u in ("kB", "MB", "GB", "TB"):
        if size < 1000:
            break
        size, unit = size / 1000, u
    if unit == "B":
        return f"{int(size)}B"
    return f"{size:.3g}{unit}"


def image_rows(images: list[ImageConfig]) -> list[tuple[str, str, str, str]]:
    """(IMAGE, TAG, IMAGE ID, SIZE) rows, sorted by name then tag."""
    rows = []
    for img in images:
        ref = reference.parse(img.ref)
        rows.append((ref.name, ref.tag or "<none>", img.id.partition(":")[2][:13], human_size(img.size)))
    return sorted(rows)


def _image_ls(args: argparse.Namespace) -> int:
    images = _store(args.data_dir).list_images()
    if args.quiet:  # crictl images -q prints full IDs, one per image ID
        for image_id in sorted({img.id for img in images}):
            print(image_id)
        return 0
    rows = image_rows(images)
    header = ("IMAGE", "TAG", "IMAGE ID", "SIZE")
    widths = [max(len(x[i]) for x in [header, *rows]) for i in range(3)]
    for r in [header, *rows]:
        print("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "   " + r[3])
    return 0
