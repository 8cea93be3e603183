"""The Kubernetes Basics tutorial's sample app, as files of a self-contained image.

The original image runs `node server.js`. Ours carries no Node.js nor Python: BusyBox's
`httpd` serves, and a CGI shell script (run by BusyBox's `sh`, whose applets need no
other program) writes the reply and the log line the Node.js app writes:

    Hello Kubernetes bootcamp! | Running on: <HOSTNAME> | v=<N>
    Running On: <HOSTNAME> | Total Requests: <n> | App Uptime: <s> seconds | Log Time: <ISO time>

Every path the image's programs use is relative to its working directory (/app) or found
from the script's own place, never absolute: a container of the process runtime is not
chrooted, so `/bin/sh` there would be the host's. `server.js` is there so `cat server.js`
shows what the app does, as in the tutorial; it is our own JavaScript rendition and is
not run.
"""
from __future__ import annotations

# Run by the image's command, `sh start.sh`, from /app.
START_SH = r"""#!/bin/sh
# kubernetes-bootcamp: starts BusyBox httpd on port 8080; www/cgi-bin/index.cgi answers.
# Binds POD_IP when it is set (a pod of the rootless process runtime shares the host's
# network and has its own 127.x address), else every address.
export TZ=UTC0
export BOOTCAMP_HOST="${HOSTNAME:-$(hostname)}"
export BOOTCAMP_STATE="$PWD/.state"
mkdir -p "$BOOTCAMP_STATE" || exit 1
rm -rf "$BOOTCAMP_STATE/lock"
echo 0 > "$BOOTCAMP_STATE/requests"
started=$(echo | ts '%.s')
export BOOTCAMP_STARTED="${started% }"
listen=8080
[ -n "$POD_IP" ] && listen="$POD_IP:8080"
httpd -f -p "$listen" -h www &
server=$!
# The shell stays as the container's first process so that SIGTERM ends the app, as it
# ends the Node.js original (a PID 1 without a handler would ignore it). The signal goes
# to the shell's process group, never to a saved pid: httpd may have been reaped already
# and its pid reused by another program. The shell dies of it too where it can (not as a
# PID namespace's first process: there it exits 143).
trap 'trap - TERM INT; kill -TERM 0 2>/dev/null; wait; exit 143' TERM INT
echo "$BOOTCAMP_STARTED" | awk '{
  split($1, t, "."); ms = substr(t[2] "000", 1, 3)
  printf "Kubernetes Bootcamp App Started At: %s.%sZ | Running On:  %s \n\n",
    strftime("%Y-%m-%dT%H:%M:%S", t[1]), ms, ENVIRON["BOOTCAMP_HOST"]
}'
wait "$server"
"""

# httpd runs a CGI from its own directory, /app/www/cgi-bin, so this interpreter path is the
# image's /bin/sh under any runtime.
INDEX_CGI = r"""#!../../../bin/sh
# Answers every request to a directory URL ("/", "/x/"), as the Node.js app answers all.
state="$BOOTCAMP_STATE"
# One request at a time updates the counter; a lock left by a killed request is taken over.
tries=0
until mkdir "$state/lock" 2>/dev/null; do
  tries=$((tries + 1))
  [ "$tries" -gt 2000 ] && break
  usleep 500
done
read -r n < "$state/requests" 2>/dev/null
n=$(( ${n:-0} + 1 ))
echo "$n" > "$state/requests"
rmdir "$state/lock" 2>/dev/null
body="Hello Kubernetes bootcamp! | Running on: $BOOTCAMP_HOST | v=@VERSION@"
printf 'Content-Type: text/plain\r\nContent-Length: %s\r\n\r\n' "$(( ${#body} + 1 ))"
[ "$REQUEST_METHOD" = HEAD ] || printf '%s\n' "$body"
# Closing stdout ends the response now; the log line is written after it.
exec >&-
now=$(echo | ts '%.s')
echo "${now% } $BOOTCAMP_STARTED $n" | awk '{
  split($1, t, "."); ms = substr(t[2] "000", 1, 3)
  up = sprintf("%.3f", $1 - $2); sub(/0+$/, "", up); sub(/\.$/, "", up)
  printf "Running On: %s | Total Requests: %s | App Uptime: %s seconds | Log Time: %s.%sZ\n",
    ENVIRON["BOOTCAMP_HOST"], $3, up, strftime("%Y-%m-%dT%H:%M:%S", t[1]), ms
}' >&2
"""

SERVER_JS = r"""// kubernetes-bootcamp v@VERSION@: what this image serves, written as a Node.js app.
// (The image runs start.sh: BusyBox httpd with www/cgi-bin/index.cgi gives the same answers.)
const http = require('http');

const version = '@VERSION@';
const host = process.env.HOSTNAME;
const startedAt = new Date();
let requests = 0;

const server = http.createServer((req, res) => {
  requests += 1;
  res.setHeader('Content-Type', 'text/plain');
  res.end(`Hello Kubernetes bootcamp! | Running on: ${host} | v=${version}\n`);
  const now = new Date();
  console.log(`Running On: ${host} | Total Requests: ${requests} | ` +
    `App Uptime: ${(now - startedAt) / 1000} seconds | Log Time: ${now.toISOString()}`);
});

server.listen(8080, () => {
  console.log('Kubernetes Bootcamp App Started At:', startedAt, '| Running On: ', host, '\n');
});
process.on('SIGTERM', () => process.exit(143));
"""


def app_files(version: str) -> dict[str, tuple[bytes, int]]:
    """The app's files under /app for bootcamp `version` ({path: (content, mode)})."""
    def text(s: str) -> bytes:
        return s.replace("@VERSION@", version).encode()
    return {
        "app/server.js": (text(SERVER_JS), 0o644),
        "app/start.sh": (text(START_SH), 0o755),
        "app/www/cgi-bin/index.cgi": (text(INDEX_CGI), 0o755),
    }
