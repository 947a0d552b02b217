"""``vncmux-ctl`` (also ``python -m vncmux.ctl``): drive a console from a shell script.

Talks to a running vncmux's HTTP/JSON API (``--api``) through ``vncmux.client``::

    vncmux-ctl --api unix:/run/vncmux/guest.api wait --screen 'login: ?$' --timeout 300
    vncmux-ctl --api unix:/run/vncmux/guest.api send --line root
    vncmux-ctl --api unix:/run/vncmux/guest.api keys Ctrl+C
    vncmux-ctl --api unix:/run/vncmux/guest.api screen
    vncmux-ctl --api unix:/run/vncmux/guest.api tail -f

``--api`` defaults to ``$VNCMUX_API``; the token is read from ``--token-file`` or
``$VNCMUX_TOKEN_FILE`` (a file, so it never shows in ``ps``).  Exit status: 0 done, 1 a
``wait`` timed out, 2 a usage mistake or an error from vncmux (printed on stderr).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from vncmux.client import ApiError, Client, WaitTimeout


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="vncmux-ctl", description="Read and drive a vncmux console through its API."
    )
    p.add_argument(
        "--api",
        default=os.environ.get("VNCMUX_API"),
        help="unix:PATH or tcp:HOST:PORT of vncmux's --api (default: $VNCMUX_API)",
    )
    p.add_argument(
        "--token-file",
        default=os.environ.get("VNCMUX_TOKEN_FILE"),
        help="file whose first line is the API token (default: $VNCMUX_TOKEN_FILE)",
    )
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("screen", help="print the screen as text")
    s.add_argument("--json", action="store_true", help="the whole JSON answer")
    s.add_argument("--attrs", action="store_true", help="with --json: colours per span")
    s.add_argument("--png", metavar="FILE", help="save the console as PNG instead")

    w = sub.add_parser("wait", help="wait until a pattern shows up; print the match")
    what = w.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--screen", metavar="REGEX", help="an RE2 regular expression on the screen's text"
    )
    what.add_argument(
        "--output", metavar="REGEX", help="an RE2 regular expression on the output bytes"
    )
    w.add_argument("--timeout", type=float, default=30.0, help="seconds (default 30)")
    w.add_argument(
        "--from",
        dest="from_",
        type=int,
        metavar="OFFSET",
        help="with --output: match output from this offset (default: from now on)",
    )
    w.add_argument("--json", action="store_true", help="print the whole JSON answer")

    t = sub.add_parser("send", help="type text (exactly as given)")
    t.add_argument("text", help="the text; '-' reads it from standard input")
    t.add_argument("--line", action="store_true", help="then press Enter (a CR)")
    t.add_argument(
        "--offset", action="store_true", help="print the output offset (for wait --from)"
    )

    k = sub.add_parser("keys", help="press keys by name: Enter Ctrl+C F5 Up ...")
    k.add_argument("names", nargs="+")
    k.add_argument("--offset", action="store_true", help="print the output offset")

    f = sub.add_parser("tail", help="print the recent output; -f to keep following")
    f.add_argument("-f", "--follow", action="store_true", help="keep printing new output")
    f.add_argument("-c", "--bytes", type=int, default=4096, help="how much to start with")
    f.add_argument("--from", dest="from_", type=int, metavar="OFFSET", help="start here")

    sub.add_parser("status", help="device state, clients, counters (JSON)")
    return p


def _token(path: str | None) -> str | None:
    if not path:
        return None
    with open(path, encoding="utf-8") as f:
        return f.readline().strip() or None


def _tail(client: Client, args: argparse.Namespace) -> None:
    """Print the output from ``--from`` (or the last ``--bytes``); with ``-f`` keep
    following, resuming where a stream ended (and saying what was lost, if anything)."""
    out = sys.stdout.buffer
    offset: int | None = args.from_
    tail: int | None = args.bytes if offset is None else None
    if not args.follow:
        out.write(client.output(from_=offset, tail=tail)[1])
        out.flush()
        return
    while True:
        stream = client.follow(from_=offset, tail=tail)
        if offset is not None and stream.start > offset:
            print(
                f"vncmux-ctl: output {offset}..{stream.start} was lost (no longer held)",
                file=sys.stderr,
            )
        for chunk in stream:
            out.write(chunk)
            out.flush()
        offset, tail = stream.offset, None


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not args.api:
        print("vncmux-ctl: error: --api (or $VNCMUX_API) is required", file=sys.stderr)
        return 2
    try:
        client = Client(args.api, token=_token(args.token_file))
        return _command(client, args)
    except WaitTimeout as e:
        print(f"vncmux-ctl: {e.message}", file=sys.stderr)
        return 1
    except ApiError as e:
        print(f"vncmux-ctl: error: {e.message} (HTTP {e.status})", file=sys.stderr)
        return 2
    except (OSError, ValueError) as e:
        print(f"vncmux-ctl: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


def _command(client: Client, args: argparse.Namespace) -> int:
    if args.command == "screen":
        if args.png:
            with open(args.png, "wb") as f:
                f.write(client.screenshot())
        elif args.json:
            print(json.dumps(client.screen(attrs=args.attrs), ensure_ascii=False, indent=1))
        else:
            sys.stdout.write(client.screen_text())
    elif args.command == "wait":
        if args.screen is not None:
            found = client.wait_screen(args.screen, args.timeout)
        else:
            found = client.wait_output(args.output, args.timeout, args.from_)
        print(json.dumps(found, ensure_ascii=False) if args.json else found["match"])
    elif args.command == "send":
        text = sys.stdin.read() if args.text == "-" else args.text
        offset = client.send(text + ("\r" if args.line else ""))
        if args.offset:
            print(offset)
    elif args.command == "keys":
        offset = client.keys(*args.names)
        if args.offset:
            print(offset)
    elif args.command == "tail":
        _tail(client, args)
    elif args.command == "status":
        print(json.dumps(client.status(), ensure_ascii=False, indent=1))
    return 0


def main() -> None:
    """The console_scripts entry point."""
    raise SystemExit(run())


if __name__ == "__main__":
    main()
