#!/usr/bin/python3
"""Records what Ganeti 3.0's own Python gnt-* tools send and print, as
golden files for the ganeti-rs CLI tests (tests/golden.rs).

Needs Debian's ganeti-3.0 package unpacked (apt-get download ganeti-3.0;
dpkg -x ganeti-3.0_*.deb DIR) and its Python dependencies
(python3-simplejson python3-pyparsing python3-openssl python3-pyinotify
python3-pycurl python3-paramiko python3-bitarray python3-psutil).

Usage: generate.py DIR/usr/share/ganeti/3.0
Each case in cases.json gives the command and the master's canned replies
(a reply, or {"seq": [...]} for successive calls); the result is written to
<name>.json next to this script.
"""

import json
import os
import socket
import subprocess
import sys
import tempfile
import threading

HERE = os.path.dirname(os.path.abspath(__file__))


def serve(path, replies, log):
  counters = {}
  srv = socket.socket(socket.AF_UNIX)
  srv.bind(path)
  srv.listen(5)

  def handle(c):
    buf = b""
    while True:
      d = c.recv(65536)
      if not d:
        return
      buf += d
      while b"\x03" in buf:
        msg, buf = buf.split(b"\x03", 1)
        req = json.loads(msg)
        log.append([req["method"], req["args"]])
        r = replies.get(req["method"])
        if isinstance(r, dict) and "seq" in r:
          i = counters.get(req["method"], 0)
          counters[req["method"]] = i + 1
          r = r["seq"][min(i, len(r["seq"]) - 1)]
        if r is None:
          r = {"success": False,
               "result": ["LuxiError", ["no canned reply for " + req["method"]]]}
        c.sendall(json.dumps(r).encode() + b"\x03")

  def loop():
    while True:
      c, _ = srv.accept()
      threading.Thread(target=handle, args=(c,), daemon=True).start()

  threading.Thread(target=loop, daemon=True).start()


def mask_reason(v):
  """Replaces the nanosecond timestamps of reason trails by 0."""
  if isinstance(v, dict):
    out = {}
    for k, x in v.items():
      if k == "reason" and isinstance(x, list):
        out[k] = [[e[0], e[1], 0] for e in x]
      else:
        out[k] = mask_reason(x)
    return out
  if isinstance(v, list):
    return [mask_reason(x) for x in v]
  return v


def main():
  share = sys.argv[1]
  cases = json.load(open(os.path.join(HERE, "cases.json")))
  for case in cases:
    base = tempfile.mkdtemp()
    root = os.path.join(base, "node1")
    sockdir = os.path.join(root, "var/run/ganeti/socket")
    os.makedirs(sockdir)
    os.makedirs(os.path.join(root, "var/log/ganeti"))
    log = []
    serve(os.path.join(sockdir, "ganeti-query"), case["replies"], log)
    env = dict(os.environ, GANETI_ROOTDIR=root, GANETI_HOSTNAME="node1",
               TZ="UTC", PYTHONPATH=share, PYTHONHASHSEED="0")
    # Paths in arguments are relative to the crate (cli/), as in the tests.
    p = subprocess.run(["/usr/bin/python3", os.path.join(share, case["bin"])]
                       + case["args"], env=env, capture_output=True, text=True,
                       cwd=os.path.dirname(os.path.dirname(HERE)))
    # Paths under the temporary directory are recorded as BASE.
    out = dict(case, rc=p.returncode, stdout=p.stdout.replace(base, "BASE"),
               stderr=p.stderr.replace(base, "BASE"), requests=mask_reason(log))
    with open(os.path.join(HERE, case["name"] + ".json"), "w") as f:
      json.dump(out, f, indent=1, sort_keys=True)
      f.write("\n")
    print(case["name"], p.returncode)


if __name__ == "__main__":
  main()
