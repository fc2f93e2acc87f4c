"""Drives Ganeti 3.0's own RAPI client (ganeti.rapi.client) for the
end-to-end tests: one JSON request a line on standard input, one JSON
answer a line on standard output.

  argv: TOOLS_DIR HOST PORT
  request: {"user": null|str, "password": null|str, "method": "GetInstances",
            "args": [...], "kwargs": {...}}
  answer:  {"ok": result} or {"error": message, "code": http_code}
"""

import json
import sys

sys.path.insert(0, sys.argv[1])

import pycurl  # noqa: E402
from ganeti.rapi import client as rc  # noqa: E402


def main():
    host, port = sys.argv[2], int(sys.argv[3])
    pycurl.global_init(pycurl.GLOBAL_ALL)
    clients = {}
    for line in sys.stdin:
        req = json.loads(line)
        key = (req.get("user"), req.get("password"))
        if key not in clients:
            clients[key] = rc.GanetiRapiClient(host, port=port, username=key[0],
                                               password=key[1])
        c = clients[key]
        try:
            result = getattr(c, req["method"])(*req.get("args", []),
                                               **req.get("kwargs", {}))
            if isinstance(result, (set, frozenset)):
                result = sorted(result)
            out = {"ok": result}
        except rc.GanetiApiError as e:
            out = {"error": str(e), "code": e.code}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


main()
