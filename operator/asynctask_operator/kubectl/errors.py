"""What went wrong, said for a person: the API's refusals (401, 403, 404, 422) in the plugin's words.

>>> explain(ApiError(404, "NotFound", ""), "get", "tasktypes", "media", "x")
"no TaskType 'x' in namespace 'media'"
>>> explain(ApiError(403, "Forbidden", ""), "patch", "asynctasks", "media")
"you may not patch asynctasks in 'media'"
"""

from __future__ import annotations

from asynctask_operator.adapters.kube import ApiError

KINDS = {
    "asynctasks": "AsyncTask",
    "tasktypes": "TaskType",
    "taskqueues": "TaskQueue",
    "scheduledtasks": "ScheduledTask",
    "pods": "Pod",
    "jobs": "Job",
    "events": "Event",
}

# Exit codes: the outcome of what was waited for, then the plugin's own failures.
SUCCEEDED, FAILED, CANCELLED, TIMED_OUT = 0, 1, 2, 3
ERROR = 4  # bad input, a refusal by the API server, an unreachable cluster: nothing was waited for
INTERRUPTED = 130


class CliError(Exception):
    """A failure to report on one line and exit with ``code``."""

    def __init__(self, message: str, code: int = ERROR) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def explain(error: ApiError, verb: str, plural: str, namespace: str | None, name: str | None = None) -> str:
    where = f"in namespace '{namespace}'" if namespace else "in any namespace"
    kind = KINDS.get(plural, plural)
    if error.status == 401:
        return "the API server did not accept your credentials (401 Unauthorized): log in again, or check --context/--kubeconfig"
    if error.status == 403:
        scope = f"in '{namespace}'" if namespace else "across namespaces"
        return f"you may not {verb} {plural} {scope}" + (f" ({error.message})" if error.message else "")
    if error.status == 404:
        if name:
            return f"no {kind} '{name}' {where}"
        return f"the API server does not serve {plural}: are the asynctask CRDs installed? ({error.message})"
    if error.status == 0:
        return f"cannot reach the API server: {error.message}"
    if error.status == 422:
        return f"the API server refused the {kind}: {error.message}"
    return f"{verb} {plural}{f' {name!r}' if name else ''} {where}: {error.status} {error.reason}: {error.message}"


def refused(error: ApiError, verb: str, plural: str, namespace: str | None, name: str | None = None) -> CliError:
    return CliError(explain(error, verb, plural, namespace, name))
