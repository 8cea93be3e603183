"""Running Debian's `skopeo` for one registry endpoint, with nothing of the host's container config.

Every call runs in a private session directory (mode 0700) that holds everything
skopeo would otherwise read from the machine: an accept-anything signature policy
(kubelite checks digests, not signatures), an empty `registries.conf` (references
are always fully qualified, so no search list and no system mirror applies), an
empty `registries.d` (no signature lookaside fetches), an auth file with at most the
one credential being tried (mode 0600), a certificate directory built from the
registry's TLS config, and a HOME of its own so no `~/.docker/config.json` or
`auth.json` is read behind our back. The session directory is removed afterwards,
with the auth file in it.

Offline, skopeo also gets a proxy that does not exist, on 127.0.0.1: Go sends every
request for a host other than localhost or a loopback address to the proxy, without
resolving that host. So even a loopback registry that redirects a blob download or
names a token server elsewhere cannot make skopeo look up or dial anything off this
machine; such a request fails at the proxy, and the reason says so.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import signal
import tempfile
from dataclasses import dataclass

from .credentials import Credential
from .registries import Endpoint

SKOPEO = "skopeo"
_POLICY = {"default": [{"type": "insecureAcceptAnything"}]}
_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')
_PREFIXES = (re.compile(r'^Error parsing image name "[^"]*": '), re.compile(r"^initializing source \S+: "),
             re.compile(r"^Error initializing source \S+: "))
_NOT_FOUND = ("manifest unknown", "name unknown", "not found")
_UNAUTHORIZED = ("unauthorized", "authentication required", "denied", "invalid username/password")
# Port 9 (discard) on loopback: nothing answers there, and nothing leaves the machine.
OFFLINE_PROXY = "http://127.0.0.1:9"
_PROXY_VARS = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


class RegistryError(Exception):
    """skopeo failed; the message is the registry's (or the network's) own reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason

    @property
    def not_found(self) -> bool:
        """The registry said there is no such manifest or repository."""
        low = self.reason.lower()
        return any(s in low for s in _NOT_FOUND) and not self.unauthorized

    @property
    def unauthorized(self) -> bool:
        """The registry refused the credentials (or wanted some)."""
        low = self.reason.lower()
        return any(s in low for s in _UNAUTHORIZED)


def available() -> bool:
    """Whether skopeo is installed."""
    return shutil.which(SKOPEO) is not None


@dataclass
class Session:
    """A private directory with skopeo's configuration for one endpoint and one credential."""

    dir: str
    endpoint: Endpoint
    credential: Credential | None
    offline: bool = False

    @classmethod
    def create(cls, parent: str, endpoint: Endpoint, credential: Credential | None, *,
               offline: bool = False) -> Session:
        """Make the directory and its files under `parent`."""
        os.makedirs(parent, exist_ok=True)
        d = tempfile.mkdtemp(prefix=".pull-", dir=parent)   # 0700
        for sub in ("home", "registries.d", "tmp"):
            os.mkdir(os.path.join(d, sub), 0o700)
        _write(os.path.join(d, "policy.json"), json.dumps(_POLICY))
        _write(os.path.join(d, "registries.conf"), "unqualified-search-registries = []\n")
        if credential is not None:
            auth = {"auths": {endpoint.host: credential.auth_entry()}}
            _write(os.path.join(d, "auth.json"), json.dumps(auth), mode=0o600)
        tls = endpoint.tls
        if tls and (tls.ca_file or tls.cert_file):
            certs = os.path.join(d, "certs")
            os.mkdir(certs, 0o700)
            # skopeo's cert dir: *.crt are CAs, a *.cert/*.key pair is the client certificate.
            for src, name in ((tls.ca_file, "ca.crt"), (tls.cert_file, "client.cert"), (tls.key_file, "client.key")):
                if src:
                    try:
                        shutil.copyfile(src, os.path.join(certs, name))
                    except OSError as e:
                        shutil.rmtree(d, ignore_errors=True)
                        raise RegistryError(f"TLS configuration of {endpoint.host}: {e}") from e
        return cls(d, endpoint, credential, offline)

    def close(self) -> None:
        """Remove the directory (and the auth file with it)."""
        shutil.rmtree(self.dir, ignore_errors=True)

    def _global_args(self) -> list[str]:
        return ["--policy", os.path.join(self.dir, "policy.json"), "--registries.d", os.path.join(self.dir, "registries.d"),
                "--tmpdir", os.path.join(self.dir, "tmp")]

    def _src_args(self, prefix: str) -> list[str]:
        ep = self.endpoint
        args = [f"--{prefix}tls-verify={'false' if ep.plain_http else 'true'}"]
        if self.credential is None:
            args.append(f"--{prefix}no-creds")
        else:
            args += [f"--{prefix}authfile", os.path.join(self.dir, "auth.json")]
        if os.path.isdir(os.path.join(self.dir, "certs")):
            args += [f"--{prefix}cert-dir", os.path.join(self.dir, "certs")]
        return args

    def _env(self) -> dict[str, str]:
        home = os.path.join(self.dir, "home")
        env = {k: v for k, v in os.environ.items()
               if k not in ("DOCKER_CONFIG", "REGISTRY_AUTH_FILE", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR")}
        env.update(HOME=home, XDG_CONFIG_HOME=os.path.join(home, ".config"), XDG_RUNTIME_DIR=home,
                   CONTAINERS_REGISTRIES_CONF=os.path.join(self.dir, "registries.conf"),
                   CONTAINERS_POLICY_JSON=os.path.join(self.dir, "policy.json"))
        if self.offline:
            for name in _PROXY_VARS:
                env.pop(name, None)
                env.pop(name.lower(), None)
            env.update(HTTP_PROXY=OFFLINE_PROXY, HTTPS_PROXY=OFFLINE_PROXY, http_proxy=OFFLINE_PROXY,
                       https_proxy=OFFLINE_PROXY)
        return env

    async def inspect_raw(self, docker_ref: str, timeout: float) -> bytes:
        """The manifest (or index) bytes the registry serves for `docker_ref`."""
        argv = [*self._global_args(), "inspect", "--raw", *self._src_args(""), "--retry-times", "0", docker_ref]
        return await self._run(argv, timeout)

    async def copy(self, docker_ref: str, blob_dir: str, layout: str, timeout: float) -> None:
        """Copy the image (this platform's, from an index) into `layout`, its blobs into `blob_dir`."""
        argv = [*self._global_args(), "copy", "--quiet", "--remove-signatures", *self._src_args("src-"),
                "--dest-shared-blob-dir", blob_dir, docker_ref, f"oci:{layout}:image"]
        await self._run(argv, timeout)

    async def _run(self, argv: list[str], timeout: float) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            shutil.which(SKOPEO) or SKOPEO, *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env=self._env(), cwd=self.dir, start_new_session=True)
        try:
            out, err = await asyncio.wait_for(proc.communicate(), timeout)
        except BaseException:
            # Cancelled (the pod went away) or timed out: stop skopeo and what it started.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            await proc.wait()
            raise
        if proc.returncode != 0:
            raise RegistryError(error_reason(err.decode(errors="replace")))
        return out


def error_reason(stderr: str) -> str:
    """The reason in skopeo's fatal log line, without its "initializing source …" framing."""
    text = stderr.strip()
    matches = _MSG.findall(text)
    if matches:
        text = re.sub(r"\\(.)", r"\1", matches[-1])   # undo Go's %q escaping of the message
    else:
        text = text.splitlines()[-1] if text else "skopeo failed"
    for p in _PREFIXES:
        text = p.sub("", text, count=1)
    return text


def _write(path: str, text: str, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w") as f:
        f.write(text)
