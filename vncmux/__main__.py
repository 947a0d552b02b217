"""``python -m vncmux [options]``: the twistd plugin in the foreground, same options."""

import sys


def main() -> None:
    """Run ``twistd -n vncmux`` with our argv, so both entry points share one parser."""
    from twisted.scripts.twistd import run

    sys.argv = [sys.argv[0], "--nodaemon", "--pidfile=", "vncmux", *sys.argv[1:]]
    run()


if __name__ == "__main__":
    main()
