"""apiserver: the read-only HTTP API over the projection database."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("kanade-projection")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
