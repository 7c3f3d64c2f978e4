#!/usr/bin/env python3
"""html_render.py - renders an HTML file in headless Chromium and reports what the
browser laid out, for test_report_html.sh and deploy/scripts/report-screenshots.sh.

    html_render.py [--screenshot OUT.png] [--width 1280] [--height 2000] FILE.html

Prints one JSON object on stdout: the document's title, its <script> count, its
body text, every network request the page made (a self-contained page makes one:
the file itself), every console/log entry (a Content-Security-Policy violation
shows up there), and per <svg>: its id, attributes, rendered box and, for each
element carrying data-* attributes, the tag, class, data-* values and rendered box.

Chromium is driven over the DevTools protocol on a pipe (--remote-debugging-pipe:
fds 3 and 4, NUL-terminated JSON), so nothing listens on a port. It must not touch
the network: no proxy, every host name resolves to nothing, background services
off, a throw-away profile and HOME; and when this process may create a network
namespace (root, or user namespaces), Chromium runs in an empty one. --no-sandbox
because the test machine runs as root in a chroot, where Chromium's sandbox cannot
start.
"""
import argparse
import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TIMEOUT_S = 40

# Runs in the page after load. The page has no script of its own (its CSP forbids
# one); DevTools evaluation is not subject to the page's CSP.
COLLECT = r"""
(() => {
  const box = (e) => { const r = e.getBoundingClientRect();
                       return {x: r.x, y: r.y, width: r.width, height: r.height}; };
  const attrs = (e) => { const o = {}; for (const a of e.attributes) o[a.name] = a.value; return o; };
  const svgs = [];
  for (const svg of document.querySelectorAll('svg')) {
    const items = [];
    for (const el of svg.querySelectorAll('*')) {
      if (Object.keys(el.dataset).length === 0) continue;
      let bbox = null;
      try { const b = el.getBBox(); bbox = {width: b.width, height: b.height}; } catch (e) {}
      items.push({tag: el.tagName.toLowerCase(), class: el.getAttribute('class') || '',
                  data: Object.assign({}, el.dataset), box: box(el), bbox: bbox});
    }
    svgs.push({id: svg.id, attrs: attrs(svg), box: box(svg), items: items});
  }
  const totals = {};
  for (const e of document.querySelectorAll('[id^="total-"]')) totals[e.id] = e.textContent;
  const tables = {};
  for (const t of document.querySelectorAll('table[id]'))
    tables[t.id] = {rows: t.tBodies.length ? t.tBodies[0].rows.length : 0, box: box(t)};
  return {title: document.title, scripts: document.scripts.length, totals: totals, tables: tables,
          script_elements: document.getElementsByTagName('script').length,
          text: document.body ? document.body.innerText : '',
          page_height: document.documentElement.scrollHeight, svgs: svgs};
})()
"""


class Browser:
    """One Chromium process and its DevTools pipe."""

    def __init__(self, chromium, width, height):
        self.tmp = tempfile.mkdtemp(prefix="tp-chromium.")
        self.events = []
        self.next_id = 0
        self.buf = b""
        to_child_r, self.to_child = os.pipe()
        self.from_child, from_child_w = os.pipe()
        args = [chromium, "--headless", "--no-sandbox", "--disable-gpu",
                "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                "--disable-extensions", "--disable-component-extensions-with-background-pages",
                "--disable-background-networking", "--disable-component-update",
                "--disable-default-apps", "--disable-sync", "--disable-breakpad",
                "--disable-domain-reliability", "--metrics-recording-only", "--no-pings",
                "--no-proxy-server", "--host-resolver-rules=MAP * ~NOTFOUND",
                "--user-data-dir=" + os.path.join(self.tmp, "profile"),
                "--window-size=%d,%d" % (width, height), "--hide-scrollbars",
                "--remote-debugging-pipe", "about:blank"]
        if own_network_namespace():
            args = ["unshare", "--net", "--"] + args
        env = dict(os.environ, HOME=self.tmp, XDG_CONFIG_HOME=os.path.join(self.tmp, "config"),
                   XDG_CACHE_HOME=os.path.join(self.tmp, "cache"))
        for k in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy"):
            env.pop(k, None)
        self.log = open(os.path.join(self.tmp, "chromium.log"), "w+")

        def child_fds():
            os.dup2(to_child_r, 3)
            os.dup2(from_child_w, 4)

        self.proc = subprocess.Popen(args, preexec_fn=child_fds, pass_fds=(3, 4), env=env,
                                     stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
                                     start_new_session=True)
        os.close(to_child_r)
        os.close(from_child_w)

    def send(self, method, params=None, session=None):
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        while data:
            data = data[os.write(self.to_child, data):]
        return self.next_id

    def receive(self):
        while b"\0" not in self.buf:
            chunk = os.read(self.from_child, 1 << 16)
            if not chunk:
                raise RuntimeError("chromium closed its DevTools pipe:\n" + self.log_text())
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def call(self, method, params=None, session=None):
        want = self.send(method, params, session)
        while True:
            msg = self.receive()
            if msg.get("id") == want:
                if "error" in msg:
                    raise RuntimeError("%s: %s" % (method, msg["error"]))
                return msg.get("result", {})
            self.events.append(msg)

    def wait_event(self, method):
        for msg in self.events:
            if msg.get("method") == method:
                return msg
        while True:
            msg = self.receive()
            self.events.append(msg)
            if msg.get("method") == method:
                return msg

    def log_text(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()[-4000:]

    def close(self):
        try:
            self.send("Browser.close")
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self.to_child, self.from_child):
            os.close(fd)
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


def own_network_namespace():
    """True when `unshare --net` works here (root or user namespaces)."""
    if shutil.which("unshare") is None:
        return False
    try:
        return subprocess.run(["unshare", "--net", "--", "true"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=5).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def render(browser, path, width, height, screenshot):
    target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
    for domain in ("Page", "Network", "Runtime", "Log"):
        browser.call(domain + ".enable", session=session)
    browser.call("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
                 session=session)
    browser.events.clear()
    browser.call("Page.navigate", {"url": "file://" + os.path.abspath(path)}, session=session)
    browser.wait_event("Page.loadEventFired")
    result = browser.call("Runtime.evaluate", {"expression": COLLECT, "returnByValue": True},
                          session=session)
    if "exceptionDetails" in result:
        raise RuntimeError("collecting the layout failed: %s" % result["exceptionDetails"])
    facts = result["result"]["value"]
    if screenshot:
        full = max(height, int(facts["page_height"]))
        browser.call("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": full, "deviceScaleFactor": 1, "mobile": False},
                     session=session)
        shot = browser.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                            session=session)
        with open(screenshot, "wb") as out:
            out.write(base64.b64decode(shot["data"]))
        facts["screenshot"] = {"path": screenshot, "width": width, "height": full}
    facts["requests"] = [e["params"]["request"]["url"] for e in browser.events
                         if e.get("method") == "Network.requestWillBeSent"]
    facts["log"] = [e["params"]["entry"] for e in browser.events if e.get("method") == "Log.entryAdded"]
    facts["console"] = [e["params"] for e in browser.events
                        if e.get("method") == "Runtime.consoleAPICalled"]
    return facts


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--screenshot")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=2000)
    ap.add_argument("--chromium", default=os.environ.get("TP_CHROMIUM", "chromium"))
    opts = ap.parse_args()
    if shutil.which(opts.chromium) is None:
        sys.exit("html_render.py: %s not found: run deploy/scripts/install-deps.sh" % opts.chromium)

    def on_alarm(signum, frame):
        raise TimeoutError("chromium did not finish within %d s" % TIMEOUT_S)

    signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TIMEOUT_S)
    started = time.monotonic()
    browser = Browser(opts.chromium, opts.width, opts.height)
    try:
        facts = render(browser, opts.file, opts.width, opts.height, opts.screenshot)
    except (RuntimeError, TimeoutError, OSError) as e:
        sys.stderr.write("html_render.py: %s\n--- chromium's log ---\n%s\n" % (e, browser.log_text()))
        browser.close()
        return 1
    browser.close()
    facts["render_seconds"] = round(time.monotonic() - started, 2)
    json.dump(facts, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
