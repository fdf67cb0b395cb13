"""``apiserver``: the read-only HTTP API. Placeholder until its issue lands."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    print(
        "apiserver: the read-only API is not built yet; only projectord is available",
        file=sys.stderr,
    )
    return 2


if __name__ == "__main__":
    sys.exit(main())
