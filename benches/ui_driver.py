"""The browser half of benches/ui.sh: drives headless Chromium through
chromedriver (W3C WebDriver, JSON over HTTP on loopback) and prints the
figures. Arguments: driver port, den ui URL (with token), work folder, N page
loads, K keystrokes, den ui's pid, den's path, den ui's RSS at start (kB),
hyperfine's JSON of `den ssh ID -- true`."""

import json
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request

dport, url, work, N, K, ui_pid, den, rss_start, ssh_json = sys.argv[1:10]
N, K, ui_pid, rss_start = int(N), int(K), int(ui_pid), int(rss_start)
BASE = f"http://127.0.0.1:{dport}"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-dev-shm-usage", f"--user-data-dir={work}/profile", "--window-size=1280,800",
]


def call(method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(BASE + path, data=data, method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=120) as r:
        return json.load(r)["value"]


caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome",
        "goog:chromeOptions": {"binary": "/usr/bin/chromium", "args": ARGS}}}}
sid = call("POST", "/session", caps)["sessionId"]
S = f"/session/{sid}"


def js(script, *args):
    return call("POST", S + "/execute/sync", {"script": script, "args": list(args)})


def js_async(script, *args):
    return call("POST", S + "/execute/async", {"script": script, "args": list(args)})


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS"):
            return int(line.split()[1])
    return 0


def wait(expr, limit=30):
    start = time.monotonic()
    while time.monotonic() - start < limit:
        try:
            v = js(f"return ({expr});")
        except urllib.error.HTTPError:  # the page between two loads
            v = None
        if v:
            return v
        time.sleep(0.005)
    raise SystemExit(f"bench: waited {limit}s for {expr}")


LIST = "performance.getEntriesByName('den-list-visible')[0]?.startTime"
call("POST", S + "/timeouts", {"script": 120000})

# Page load: navigation start to the workspace list shown (the page marks it).
call("POST", S + "/url", {"url": url})  # the first load trades the token for the cookie
wait(LIST)
root = url.split("?")[0]
loads, dcl = [], []
DCL = "return performance.getEntriesByType('navigation')[0].domContentLoadedEventEnd;"
for _ in range(N):
    call("POST", S + "/url", {"url": root})
    loads.append(wait(LIST))
    dcl.append(js(DCL))
wait("document.querySelector('#workspaces tr[data-id=uibench] [data-status=Running]')")
rss_idle = rss(ui_pid)

# Keystroke echo: one byte over the terminal websocket, to its echo.
ECHO = """
const [k, done] = [arguments[0], arguments[arguments.length - 1]];
const ws = new WebSocket(`ws://${location.host}/api/workspaces/uibench/terminal?context=default&cols=80&rows=24`);
ws.binaryType = 'arraybuffer';
const times = []; let waiting = null; let t0 = 0;
ws.onmessage = (ev) => {
  if (typeof ev.data === 'string') return;
  const s = new TextDecoder().decode(ev.data);
  if (waiting && s.includes(waiting)) { times.push(performance.now() - t0); waiting = null; setTimeout(next, 20); }
};
ws.onerror = () => done({error: 'websocket failed'});
const keys = 'abcdefghijklmnopqrstuvwxyz';
let i = 0;
function next() {
  if (i === k) { ws.send(new Uint8Array([21])); ws.close(); return done({times}); }
  if (i % 20 === 19) ws.send(new Uint8Array([21]));  // Ctrl-U: keep the line short
  const c = keys[i % keys.length]; i++;
  waiting = c; t0 = performance.now(); ws.send(new TextEncoder().encode(c));
}
ws.onopen = () => setTimeout(next, 1500);  // let the shell print its prompt first
"""
echo = js_async(ECHO, K)
if "error" in echo:
    raise SystemExit(f"bench: {echo['error']}")
echo_ms = statistics.median(echo["times"])

# Three terminals open at once.
js("window.__t = [1,2,3].map(() => new WebSocket(`ws://${location.host}/api/workspaces/uibench/terminal?context=default&cols=80&rows=24`)); return null;")
wait("window.__t.every(w => w.readyState === 1)")
time.sleep(2)
rss_3 = rss(ui_pid)
js("window.__t.forEach(w => w.close()); return null;")

# A `den stop` in a shell, to the page showing it.
subprocess.run([den, "stop", "uibench"], check=True, capture_output=True)
t0 = time.monotonic()
wait("document.querySelector('#workspaces tr[data-id=uibench] [data-status=Stopped]')")
shown_ms = (time.monotonic() - t0) * 1000

call("DELETE", S)

ssh_ms = json.load(open(ssh_json))["results"][0]["median"] * 1000
print(f"{'den ui':52} {'figure':>10} {'target':>10}")
print(f"{'page load to the list shown (median of %d)' % N:52} {statistics.median(loads):8.1f}ms {'≤ 300ms':>10}")
print(f"{'  of which: the page and its scripts (DOMContentLoaded)':52} {statistics.median(dcl):8.1f}ms")
print(f"{'keystroke echo, websocket + SSH (median of %d)' % K:52} {echo_ms:8.1f}ms")
print(f"{'den ssh ID -- true round trip (median of %d)' % N:52} {ssh_ms:8.1f}ms")
print(f"{'  echo / ssh round trip':52} {echo_ms / ssh_ms:9.2f}x {'≤ 1.5x':>10}")
print(f"{'server RSS at start':52} {rss_start / 1024:8.1f}MB")
print(f"{'server RSS idle, page open':52} {rss_idle / 1024:8.1f}MB {'≤ 20MB':>10}")
print(f"{'server RSS, 3 terminals open':52} {rss_3 / 1024:8.1f}MB {'≤ 40MB':>10}")
print(f"{'den stop in a shell → shown on the page':52} {shown_ms:8.1f}ms {'≤ 1000ms':>10}")
