"""Parse gcloud command lines with gcloud's own argument parser, running none of them (issue 22, item 5).

Run by gcloud's bundled Python, with the SDK's ``lib`` folder on ``sys.path``: reads a JSON list of argument
lists (without the leading ``gcloud``) on stdin and prints a JSON list of ``{"ok": bool, "error": str}``, one per
line, then ``{"network": bool}`` (whether this process could open a connection at all). ``parse_args`` of the
calliope CLI loads each command's flag definitions and validates the line as ``gcloud`` would before running it;
no command's ``Run`` is called, so no API request and no credential lookup happen.
"""

import contextlib
import io
import json
import socket
import sys


def main() -> None:
    from googlecloudsdk import gcloud_main

    parser = gcloud_main.CreateCLI([])._CLI__parser  # the top-level calliope parser gcloud runs first
    results = []
    for args in json.load(sys.stdin):
        errors = io.StringIO()
        try:
            with contextlib.redirect_stderr(errors):
                parser.parse_args(args)
            results.append({"ok": True, "error": ""})
        except SystemExit:
            results.append({"ok": False, "error": errors.getvalue().strip() or "rejected by gcloud's parser"})
        except Exception as exc:  # a parser that raises instead of exiting: the line is not accepted either
            results.append({"ok": False, "error": f"{type(exc).__name__}: {exc}"})
    try:
        socket.create_connection(("142.250.80.46", 443), timeout=2).close()
        network = True
    except OSError:
        network = False
    print(json.dumps({"results": results, "network": network}))


if __name__ == "__main__":
    main()
