"""The official Python `pusher` server SDK (PyPI), running a JSON list of operations in order.

Usage: python trigger.py '<request JSON>'

Request: {"server": {"app_id", "key", "secret", "host", "port", "ssl"?}, "ops": [...]}, where each op
is
  {"op": "trigger", "channels": "ch" | ["ch", ...], "event": "name", "data": <any>,
   "socket_id": "1.2"?}
  {"op": "trigger_batch", "batch": [{"channel", "name", "data", "socket_id"?}, ...]}
  {"op": "channels_info", "prefix_filter": "pre"?, "attributes": ["user_count"]?}
  {"op": "channel_info", "channel": "ch", "attributes": ["subscription_count"]?}
  {"op": "users_info", "channel": "presence-ch"}
  {"op": "send_to_user", "user_id": "42", "event": "name", "data": <any>}
  {"op": "terminate_user_connections", "user_id": "42"}
`data` goes to the SDK as it is: the SDK JSON-encodes anything that is not a string.

stdout, one JSON line per op, in order:
  {"op": "trigger", "result": <what the SDK returned>}
  {"op": "trigger", "error": "PusherBadRequest", "message": "<reply body or cause>"}
The process exits 0 once every op has run, whatever their outcome: the Rust test judges them.
"""

import json
import os
import sys

import pusher
from pusher.requests import RequestsBackend


class CaBundleBackend(RequestsBackend):
    """The SDK's requests backend, verifying TLS against REQUESTS_CA_BUNDLE when it is set.

    With ssl=True the SDK verifies against the CA bundle it ships (pusher/cacert.pem) and
    ignores REQUESTS_CA_BUNDLE; a server with a certificate from a private CA needs this.
    """

    def __init__(self, client, **options):
        super().__init__(client, **options)
        bundle = os.environ.get("REQUESTS_CA_BUNDLE")
        if bundle:
            self.options["verify"] = bundle


def main():
    request = json.loads(sys.argv[1])
    server = request["server"]
    client = pusher.Pusher(
        app_id=server["app_id"],
        key=server["key"],
        secret=server["secret"],
        host=server["host"],
        port=server["port"],
        ssl=server.get("ssl", False),
        backend=CaBundleBackend,
    )
    operations = {
        "trigger": lambda op: client.trigger(
            op["channels"], op["event"], op["data"], op.get("socket_id")
        ),
        "trigger_batch": lambda op: client.trigger_batch(op["batch"]),
        "channels_info": lambda op: client.channels_info(
            op.get("prefix_filter"), op.get("attributes", [])
        ),
        "channel_info": lambda op: client.channel_info(
            op["channel"], op.get("attributes", [])
        ),
        "users_info": lambda op: client.users_info(op["channel"]),
        "send_to_user": lambda op: client.send_to_user(
            op["user_id"], op["event"], op["data"]
        ),
        "terminate_user_connections": lambda op: client.terminate_user_connections(
            op["user_id"]
        ),
    }
    for op in request["ops"]:
        run = operations[op["op"]]
        try:
            line = {"op": op["op"], "result": run(op)}
        except Exception as error:  # noqa: BLE001 - every failure is reported to the test
            line = {"op": op["op"], "error": type(error).__name__, "message": str(error)}
        print(json.dumps(line), flush=True)


if __name__ == "__main__":
    main()
