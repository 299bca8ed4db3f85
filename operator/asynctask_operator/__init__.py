"""asynctask-operator: declarative asynchronous tasks for Kubernetes."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("asynctask-operator")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0.0.0"
