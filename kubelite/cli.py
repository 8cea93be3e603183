"""The ``kubelite`` command: server, agent, image, rollout."""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import TYPE_CHECKING

from kubelite import cli_component, cli_datastore, cli_extra
from kubelite.childproc import SEPARABLE
from kubelite.cli_datastore import datastore_flags
from kubelite.cli_run import RUNTIME_HELP, RUNTIMES, pick_runtime, run_main
from kubelite.dns.options import DNSOptions
from kubelite.images import gc as image_gc
from kubelite.ingress.options import IngressOptions
from kubelite.startup import default_data_dir

if TYPE_CHECKING:
    from kubelite.dns.forward import Upstream
    from kubelite.server import ServerOptions


def _port(text: str) -> int:
    """argparse type: a TCP port number."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number (1-65535)")
    return port


def _count(text: str) -> int:
    """argparse type: a number >= 0."""
    try:
        n = int(text)
    except ValueError:
        n = -1
    if n < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number >= 0")
    return n


def _upstream(text: str) -> Upstream:
    """argparse type: a resolver address ADDR[:PORT]."""
    from kubelite.dns.forward import parse_upstream  # dnspython: only when the flag is given
    try:
        return parse_upstream(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not ADDR[:PORT] (an IP address, optionally with a port)") from None


def _set_limits(opts: ServerOptions, args: argparse.Namespace) -> None:
    """The API server's limits from the flags."""
    from kubelite.apiserver.limits import LimitsConfig
    opts.limits = LimitsConfig(max_requests_inflight=args.max_requests_inflight,
                               max_mutating_requests_inflight=args.max_mutating_requests_inflight,
                               max_connections=args.max_connections,
                               max_connections_per_address=args.max_connections_per_address,
                               header_timeout=args.request_header_timeout, body_timeout=args.request_body_timeout)


def _limit_flags(s: argparse.ArgumentParser) -> None:
    """kube-apiserver's in-flight flags, and hidden connection caps and timeouts for tests."""
    from kubelite.apiserver import limits
    s.add_argument("--max-requests-inflight", type=_count, default=limits.MAX_REQUESTS_INFLIGHT,
                   help="most read-only requests served at once (0: no limit); more get 429, as in kube-apiserver")
    s.add_argument("--max-mutating-requests-inflight", type=_count, default=limits.MAX_MUTATING_REQUESTS_INFLIGHT,
                   help="most mutating requests served at once (0: no limit); more get 429, as in kube-apiserver")
    # Hidden: tunable so tests can show them without waiting half a minute.
    s.add_argument("--max-connections", type=_count, default=0, help=argparse.SUPPRESS)
    s.add_argument("--max-connections-per-address", type=_count, default=limits.MAX_CONNECTIONS_PER_ADDRESS,
                   help=argparse.SUPPRESS)
    s.add_argument("--request-header-timeout", type=float, default=limits.HEADER_TIMEOUT, help=argparse.SUPPRESS)
    s.add_argument("--request-body-timeout", type=float, default=limits.BODY_TIMEOUT, help=argparse.SUPPRESS)


def _names(text: str) -> set[str]:
    """The names of a comma-separated component list, blanks dropped."""
    return {c.strip() for c in text.split(",") if c.strip()}


# Every component but the API server: what --api-only leaves out (--disable takes these names).
API_ONLY_OFF = {"controllers", "scheduler", "agent", "proxy", "dns", "network-policy", "ingress"}


def cmd_server(args: argparse.Namespace) -> int:
    """Run the API server and every component on the embedded store."""
    # Imported here: the other commands (agent, rollout, image) are API clients and need none of it.
    from kubelite.server import DatastoreOptions, ServerOptions, run_server
    try:
        gc_policy = image_gc.policy_from_args(args)
    except image_gc.InvalidGCConfig as e:
        print(f"kubelite: {e}", file=sys.stderr)
        return 1
    data_dir = os.path.abspath(args.data_dir)
    off = _names(args.disable)
    on = _names(args.enable)
    for flag, names in (("--disable", off), ("--enable", on)):
        if unknown := names - API_ONLY_OFF:
            print(f"kubelite: {flag}: unknown component(s): {', '.join(sorted(unknown))}", file=sys.stderr)
            return 2
    separate = _names(args.separate_processes)
    if unknown := separate - set(SEPARABLE):
        print(f"kubelite: --separate-processes: unknown or not separable component(s): {', '.join(sorted(unknown))} "
              f"(separable: {', '.join(SEPARABLE)})", file=sys.stderr)
        return 2
    if on and not args.api_only:
        print("kubelite: --enable only adds components back to --api-only (every component runs without it)",
              file=sys.stderr)
        return 2
    if args.api_only:
        off |= API_ONLY_OFF - on
    runtime = args.runtime
    if not args.disable_agent and "agent" not in off:
        runtime = pick_runtime(args.runtime, args.network, data_dir)
    opts = ServerOptions(data_dir=data_dir, api_port=args.api_port,
                         bind_address=args.bind_address, service_cidr=args.service_cidr, proxy_mode=args.proxy_mode,
                         node_name=args.node_name or "", node_ip=args.node_ip, runtime=runtime, network=args.network,
                         with_agent=not args.disable_agent, offline=args.offline,
                         registry_config=args.registry_config, pod_max_pids=args.pod_max_pids,
                         compact_interval=args.compact_interval, compact_keep=args.compact_keep,
                         keep_pods_on_stop=args.keep_pods_on_stop, allow_reset=args.allow_reset,
                         metric_resolution=args.metric_resolution,
                         hpa_sync_period=args.horizontal_pod_autoscaler_sync_period,
                         datastore=DatastoreOptions(args.datastore_endpoint, args.datastore_cafile,
                                                    args.datastore_certfile, args.datastore_keyfile, args.event_ttl,
                                                    args.token))
    opts.with_controllers = "controllers" not in off
    opts.audit_policy_file, opts.audit_log_path = args.audit_policy_file, args.audit_log_path
    opts.image_gc, opts.image_gc_period = gc_policy, args.image_gc_period
    _set_limits(opts, args)
    opts.with_scheduler = "scheduler" not in off
    opts.separate = frozenset(separate)
    opts.with_agent = opts.with_agent and "agent" not in off
    opts.with_proxy = "proxy" not in off
    opts.with_network_policy = "network-policy" not in off
    opts.dns = DNSOptions(enabled="dns" not in off, cluster_domain=args.cluster_domain.strip(".") or "cluster.local",
                          ttl=args.dns_ttl, upstreams=list(args.dns_upstream or []), port=args.cluster_dns_port)
    opts.ingress = IngressOptions(enabled="ingress" not in off, http_port=args.ingress_http_port,
                                  https_port=args.ingress_https_port)
    return run_main(run_server(opts))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script."""
    p = argparse.ArgumentParser(prog="kubelite", description="A Kubernetes-compatible cluster on one machine.")
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("server", help="run the API server, controllers, scheduler, a node agent and the proxy")
    s.add_argument("--data-dir", default=default_data_dir(),
                   help="state, certificates, kubeconfig (default ~/.kubelite or $KUBELITE_DATA_DIR)")
    s.add_argument("--api-port", type=_port, default=6443)
    s.add_argument("--bind-address", default="127.0.0.1")
    s.add_argument("--service-cidr", default="",
                   help="ClusterIP range (default: a free /20 of 10.96.0.0/12 with the nftables path, else of 127.96.0.0/12)")
    s.add_argument("--proxy-mode", choices=["auto", "nftables", "userspace"], default="auto",
                   help="Service data path: nftables in the kernel (root), or the userspace proxy (auto: nftables if possible)")
    s.add_argument("--node-name", default="")
    s.add_argument("--node-ip", default="127.0.0.1",
                   help="this node's InternalIP: where the API server reaches its agent and other nodes route its pods")
    s.add_argument("--runtime", choices=RUNTIMES, default="auto", help=RUNTIME_HELP)
    s.add_argument("--keep-pods-on-stop", action="store_true",
                   help="oci runtime: leave the containers running when the server stops (to restart or upgrade "
                        "it, as k3s does); `kubelite killall` stops them. Without it Ctrl-C/SIGTERM stops them too")
    s.add_argument("--pod-max-pids", type=int, default=None, metavar="N",
                   help="the pids limit of each pod (oci runtime; default 4096)")
    s.add_argument("--network", choices=["auto", "host", "netns"], default="auto",
                   help="pod networking: own network namespaces when root (auto), or 127.x addresses (host)")
    s.add_argument("--disable-agent", action="store_true", help="do not run a node agent in this process")
    s.add_argument("--separate-processes", default="", metavar="COMPONENTS",
                   help="comma-separated components to run as child processes of the server, using another core: "
                        "controllers,scheduler (default: every component in the server's process)")
    s.add_argument("--offline", action="store_true",
                   help="contact no registry off this machine, resolve no registry name (also KUBELITE_OFFLINE=1)")
    s.add_argument("--registry-config", default="", metavar="FILE",
                   help="registry mirrors, rewrites, credentials and TLS, as k3s's registries.yaml "
                        "(default DATA_DIR/registries.yaml)")
    s.add_argument("--disable", default="", metavar="LIST",
                   help="comma-separated components not to run: controllers,scheduler,agent,proxy,dns,"
                        "network-policy,ingress")
    s.add_argument("--api-only", action="store_true",
                   help="run the API server alone (no controllers, scheduler, node agent, proxy, DNS, network "
                        "policy or ingress), as envtest does for controller tests; --enable adds some back "
                        "(e.g. --enable controllers)")
    s.add_argument("--enable", default="", metavar="LIST",
                   help="with --api-only: comma-separated components to run after all (controllers,scheduler,...)")
    s.add_argument("--allow-reset", action="store_true",
                   help="for test fixtures: serve POST /kubelite/snapshot and /kubelite/reset (admin only), which "
                        "save the cluster state and put it back; never on a cluster you keep")
    s.add_argument("--cluster-domain", default="cluster.local", help="the cluster DNS domain (default cluster.local)")
    s.add_argument("--cluster-dns-port", type=_port, default=0, metavar="PORT",
                   help="port of the cluster DNS listener (default 53 as root, else 10053)")
    s.add_argument("--dns-upstream", type=_upstream, action="append", metavar="ADDR[:PORT]",
                   help="resolver for names outside the cluster (repeatable; default the nameservers of "
                        "/etc/resolv.conf; with KUBELITE_OFFLINE=1 only loopback addresses are used)")
    s.add_argument("--ingress-http-port", type=_port, default=0, metavar="PORT",
                   help="HTTP port of the built-in ingress controller (default 80 as root when free, else 10080)")
    s.add_argument("--ingress-https-port", type=_port, default=0, metavar="PORT",
                   help="HTTPS port of the built-in ingress controller (default 443 as root when free, else 10443)")
    s.add_argument("--dns-ttl", type=_count, default=5, metavar="SECONDS", help="TTL of cluster DNS answers (default 5)")
    datastore_flags(s)
    cli_datastore.token_flag(s)
    s.add_argument("--audit-policy-file", default="", metavar="FILE",
                   help="an audit.k8s.io/v1 Policy: which requests are written to the audit log, at which level")
    s.add_argument("--audit-log-path", default="", metavar="FILE",
                   help="where audit events go, one JSON line each ('-': standard output); needs --audit-policy-file")
    # Hidden: compaction tuning, so tests can see 410 Expired without waiting 5 minutes.
    s.add_argument("--compact-interval", type=float, default=300.0, help=argparse.SUPPRESS)
    s.add_argument("--compact-keep", type=int, default=10_000, help=argparse.SUPPRESS)
    s.add_argument("--metric-resolution", type=float, default=15.0, metavar="SECONDS",
                   help="how often node usage is scraped for metrics.k8s.io (default 15)")
    s.add_argument("--horizontal-pod-autoscaler-sync-period", type=float, default=15.0, metavar="SECONDS",
                   help="how often each HorizontalPodAutoscaler is evaluated (default 15)")
    _limit_flags(s)
    image_gc.add_flags(s)
    s.set_defaults(func=cmd_server)

    cli_extra.register(sub)
    cli_component.register(sub)
    cli_datastore.register(sub)

    args = p.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname).1s %(name)s: %(message)s", datefmt="%H:%M:%S")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
