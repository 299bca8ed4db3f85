"""The kubectl plugin, ``kubectl asynctask`` (console script ``kubectl-asynctask``): a front door beside the operator.

It talks to the Kubernetes API through the adapters and computes what the gateway computes
(statistics, queue positions, idempotent names) with the same core functions. Layers: it uses
core and adapters, never the controllers (pyproject's import-linter contract; ADR 0019).

- :mod:`~asynctask_operator.kubectl.main`: the flags and the entry point;
- :mod:`~asynctask_operator.kubectl.commands`: one function per command (the I/O), and the context
  and API calls they share; :mod:`~asynctask_operator.kubectl.submitting` (submit, wait) and
  :mod:`~asynctask_operator.kubectl.pods` (describe, logs) hold the larger ones;
- :mod:`~asynctask_operator.kubectl.follow`: follow tasks with the reflector's list+watch loop;
- :mod:`~asynctask_operator.kubectl.archived` and :mod:`~asynctask_operator.kubectl.history`: tasks past
  their TTL, read from the archive through the API server (``history``; ``get``/``describe``/``logs`` of a
  gone task);
- :mod:`~asynctask_operator.kubectl.inputs`, :mod:`~asynctask_operator.kubectl.selection`,
  :mod:`~asynctask_operator.kubectl.render`, :mod:`~asynctask_operator.kubectl.describe`,
  :mod:`~asynctask_operator.kubectl.errors`: pure parts.
"""

from asynctask_operator.extras import require

try:
    from asynctask_operator.kubectl.main import main, run
except ModuleNotFoundError:  # without the [kubectl] extra: one line and exit 4, not rich's ImportError (ADR 0022)
    require("kubectl", "kubectl asynctask", 4)
    raise

__all__ = ["main", "run"]
