"""The official Python `pusher` SDK (PyPI) verifying webhooks, for webhook_receiver.mjs.

Usage: python webhook_verify.py '{"appId", "key", "secret"}'
stdin, one JSON line per request: {"key": "<X-Pusher-Key>", "signature": "<X-Pusher-Signature>",
"body": "<raw body>"}; stdout, one JSON line each, in order:
{"valid": true, "events": [...]} or {"valid": false}.
"""

import json
import sys

import pusher


def main():
    options = json.loads(sys.argv[1])
    client = pusher.Pusher(app_id=options["appId"], key=options["key"], secret=options["secret"])
    for line in sys.stdin:
        request = json.loads(line)
        try:
            webhook = client.validate_webhook(
                key=request["key"], signature=request["signature"], body=request["body"]
            )
        except Exception as error:  # the SDK raises on malformed input: not valid
            print(f"validate_webhook raised {error!r}", file=sys.stderr)
            webhook = None
        verdict = {"valid": webhook is not None}
        if webhook is not None:
            verdict["events"] = webhook["events"]
        print(json.dumps(verdict), flush=True)


if __name__ == "__main__":
    main()
