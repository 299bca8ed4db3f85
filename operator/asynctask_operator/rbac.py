"""The Kubernetes permissions the running operator needs: one table, the source of truth.

Everything that grants or describes the operator's RBAC comes from ``RULES``:

- the Helm chart's ClusterRole/Role rules, through a generated file::

      python -m asynctask_operator.rbac --write charts/asynctask-operator/files/rules.yaml

- the RBAC table of docs/install.md (``python -m asynctask_operator.rbac --markdown``).

``tests/unit/test_rbac.py`` holds the table to the code: every API call the operator
makes (``api.create/get/list_objects/list_pages/watch/patch/delete/replace(RESOURCE, ...)``) and every
watch kopf or the operator opens must be granted here, and nothing here may go unused, but for a short
list of exceptions that say why. ``tests/unit/test_chart.py`` checks that the generated
file is up to date.

Scopes:

``namespaced``
    Objects in the served namespaces. A ClusterRole bound cluster-wide when the
    operator serves every namespace; a Role and RoleBinding in each namespace given
    with ``--namespace`` otherwise.
``own-namespace``
    Objects in the operator's own namespace only (``$POD_NAMESPACE``): always a Role there.
``cluster``
    Cluster-scoped objects: always a ClusterRole. The running operator needs none.
``kube-system``
    The API server's own objects in kube-system: granted by binding a Role Kubernetes ships there
    (the gateway's aggregation port reads the front proxy's settings through
    ``extension-apiserver-authentication-reader``), never by a Role of the chart.

``when`` names the feature a rule is needed for: ``always``, or ``reports`` (only when
``--report-url`` is set: the report-token key is then read from, or created as, a Secret).
"""

from __future__ import annotations

import argparse
import dataclasses
import pathlib
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import yaml

Scope = Literal["cluster", "namespaced", "own-namespace", "kube-system"]
Feature = Literal["always", "reports"]

SCOPES: tuple[Scope, ...] = ("namespaced", "own-namespace", "cluster")
FEATURES: tuple[Feature, ...] = ("always", "reports")

VERB_ORDER = ("get", "list", "watch", "create", "update", "patch", "delete", "deletecollection")

FRONT_PROXY_CONFIGMAP = "extension-apiserver-authentication"
"""The API server's ConfigMap in kube-system holding its ``--requestheader-*`` settings (the standard Role
``extension-apiserver-authentication-reader`` grants ``get`` on it)."""

REPORT_KEY_SECRET = "<report-key-secret>"
"""Stands for the name given with ``--report-key-secret`` in a rule's ``resource_names``.
The chart replaces it with ``.Values.reports.keySecret``."""


@dataclasses.dataclass(frozen=True)
class Rule:
    group: str
    """API group; ``""`` is the core group."""
    resources: tuple[str, ...]
    """Plural resource names, ``name/subresource`` for a subresource."""
    verbs: tuple[str, ...]
    scope: Scope
    reason: str
    """Why the operator needs it, in one line."""
    when: Feature = "always"
    resource_names: tuple[str, ...] = ()
    """Limit the rule to these object names (not possible for create, list and watch)."""


RULES: tuple[Rule, ...] = (
    # -- AsyncTasks
    Rule("asynctask.dev", ("asynctasks",), ("list", "watch"), "namespaced",
         "follow every task: the operator's own watch and the listings (at start, after an expired watch, resync)"),
    Rule("asynctask.dev", ("asynctasks",), ("delete",), "namespaced",
         "delete a finished task when its TTL runs out, and ScheduledTask runs beyond the history limits"),
    Rule("asynctask.dev", ("asynctasks",), ("create", "get"), "namespaced",
         "create the AsyncTask of a ScheduledTask run; read it back after a 409 (its name is the lock)"),
    Rule("asynctask.dev", ("asynctasks",), ("patch",), "namespaced",
         "cancel the running run of a ScheduledTask with concurrencyPolicy Replace (spec.cancel)"),
    Rule("asynctask.dev", ("asynctasks/status",), ("patch",), "namespaced",
         "write a task's phase, attempts, progress, result and conditions"),
    Rule("asynctask.dev", ("asynctasks/finalizers",), ("update",), "namespaced",
         "Jobs name their AsyncTask as owner with blockOwnerDeletion: true (OwnerReferencesPermissionEnforcement)"),
    # -- TaskTypes, TaskQueues, ScheduledTasks
    Rule("asynctask.dev", ("tasktypes", "taskqueues", "scheduledtasks"), ("list", "watch"), "namespaced",
         "follow task types, queues and schedules: the operator's watches and listings (at start, after an expired watch, resync)"),
    Rule("asynctask.dev", ("tasktypes/status", "taskqueues/status", "scheduledtasks/status"), ("patch",),
         "namespaced", "TaskType Ready, TaskQueue counts, ScheduledTask last/next schedule and active runs"),
    Rule("asynctask.dev", ("scheduledtasks",), ("get",), "namespaced",
         "re-read a ScheduledTask after its status write conflicted (409)"),
    Rule("asynctask.dev", ("scheduledtasks/finalizers",), ("update",), "namespaced",
         "ScheduledTask runs name their ScheduledTask as owner with blockOwnerDeletion: true"),
    # -- Jobs and their pods
    Rule("batch", ("jobs",), ("create",), "namespaced", "one Job per attempt"),
    Rule("batch", ("jobs",), ("get",), "namespaced",
         "read a Job directly: after a 409 to adopt it, and to confirm it is gone before failing JobDeleted"),
    Rule("batch", ("jobs",), ("list", "watch"), "namespaced",
         "follow the Jobs it created (label app.kubernetes.io/managed-by=asynctask-operator)"),
    Rule("batch", ("jobs",), ("delete",), "namespaced", "stop the running Job on cancel or when the deadline passes"),
    Rule("coordination.k8s.io", ("leases",), ("get", "create", "patch"), "own-namespace",
         "leader election (--leader-elect): one replica holds the Lease and acts", when="always"),
    Rule("", ("pods",), ("patch",), "own-namespace",
         "label its own pod asynctask.dev/leader=true or false (--pod-name), which the Service selects on"),
    Rule("", ("events",), ("create",), "namespaced",
         "Events on an AsyncTask when an attempt fails, a retry is scheduled or the task fails"),
    Rule("", ("pods",), ("list", "watch"), "namespaced",
         "exit codes, OOMKilled, eviction and image pull errors of the attempts' pods (same label)"),
    Rule("", ("secrets",), ("get",), "namespaced",
         "read the Secrets a task's callback names (secretRef, headersSecretRef) when it delivers; never "
         "listed or watched, cached 30 s"),
    # -- the report-token key, in the operator's own namespace
    Rule("", ("secrets",), ("get",), "own-namespace",
         "read the HMAC key of report tokens (--report-key-secret)", when="reports",
         resource_names=(REPORT_KEY_SECRET,)),
    Rule("", ("secrets",), ("create",), "own-namespace",
         "create that Secret with a new key on first start (create cannot be limited to a name)", when="reports"),
)  # fmt: skip


GATEWAY_RULES: tuple[Rule, ...] = (
    Rule("authentication.k8s.io", ("tokenreviews",), ("create",), "cluster",
         "authenticate each caller's bearer token (TokenReview)"),
    Rule("authorization.k8s.io", ("subjectaccessreviews",), ("create",), "cluster",
         "ask whether the caller may do what the request asks (SubjectAccessReview), per request, cached briefly"),
    Rule("asynctask.dev", ("asynctasks", "taskqueues", "scheduledtasks", "tasktypes"), ("list", "watch"), "namespaced",
         "the read cache every GET, listing, event stream and statistic is served from; TaskTypes to refuse a "
         "submission of a type that does not exist, or of a payload its schema refuses"),
    Rule("asynctask.dev", ("tasktypes",), ("get",), "namespaced",
         "confirm that a submission's TaskType does not exist before refusing it (one the cache has not seen yet)"),
    Rule("asynctask.dev", ("asynctasks",), ("create", "get"), "namespaced",
         "submit a task for an authorized caller; read it back when its Idempotency-Key's name exists (409)"),
    Rule("asynctask.dev", ("asynctasks",), ("patch", "delete"), "namespaced",
         "cancel, retry and delete tasks for an authorized caller"),
    Rule("asynctask.dev", ("taskqueues", "scheduledtasks"), ("patch",), "namespaced",
         "pause and resume queues; suspend, resume and run schedules, for an authorized caller"),
    Rule("", ("events", "pods"), ("list",), "namespaced",
         "the console's task page: the Events about a task, and the pod of an attempt, for an authorized caller"),
    Rule("", ("pods/log",), ("get",), "namespaced",
         "the console's task page: an attempt's log, for a caller allowed get pods/log"),
    Rule("", ("configmaps",), ("get",), "kube-system",
         "the aggregation port (gateway.aggregation): the front proxy's CA and header names, from ConfigMap "
         "extension-apiserver-authentication, through the Role extension-apiserver-authentication-reader the chart "
         "binds", resource_names=(FRONT_PROXY_CONFIGMAP,)),
)  # fmt: skip
"""The gateway's ServiceAccount (its own Deployment): what it does for callers the SubjectAccessReview
allowed, and the reviews themselves. ``tests/unit/test_gateway_rbac.py`` holds it to the gateway's calls."""


ARCHIVE_RULES: tuple[Rule, ...] = (
    Rule("asynctask.dev", ("asynctasks",), ("list", "watch"), "namespaced",
         "follow every task: finished ones are written to the archive, deleted ones from their last state"),
    Rule("asynctask.dev", ("asynctasks",), ("patch",), "namespaced",
         "mark a task archived (asynctask.dev/archived): with --archive-required the operator deletes it then"),
    Rule("", ("pods",), ("list",), "namespaced", "find the pod of each attempt, to read its log"),
    Rule("", ("pods/log",), ("get",), "namespaced", "keep the end of each attempt's log"),
    Rule("", ("events",), ("create",), "namespaced",
         "a Warning Event on a task the database refused, stored as a minimal record"),
    Rule("coordination.k8s.io", ("leases",), ("get", "create", "patch"), "own-namespace",
         "leader election (--leader-elect): one replica records"),
)  # fmt: skip
"""The archiver's ServiceAccount (``asynctask-archive``, its own Deployment): reads tasks and their pods'
logs, and writes one annotation per task. ``tests/unit/test_archive_rbac.py`` holds it to its calls."""


def grants(rules: Iterable[Rule] = RULES) -> set[tuple[str, str, str]]:
    """Every (group, resource, verb) the rules grant."""
    return {(r.group, res, verb) for r in rules for res in r.resources for verb in r.verbs}


def policy_rules(
    scope: Scope,
    when: Iterable[Feature] = FEATURES,
    *,
    report_key_secret: str = REPORT_KEY_SECRET,
    rules: Iterable[Rule] = RULES,
) -> list[dict[str, Any]]:
    """The ``rules`` of a ClusterRole or Role for ``scope``, for the features in ``when``.

    The verbs of each resource are collected (in ``VERB_ORDER``), then resources with
    the same verbs are listed together, in the table's order::

        >>> policy_rules("own-namespace", report_key_secret="k")[2]
        {'apiGroups': [''], 'resources': ['secrets'], 'verbs': ['get'], 'resourceNames': ['k']}
    """
    features = set(when)
    verbs_of: dict[tuple[str, str, tuple[str, ...]], set[str]] = {}
    for rule in rules:
        if rule.scope != scope or rule.when not in features:
            continue
        names = tuple(report_key_secret if n == REPORT_KEY_SECRET else n for n in rule.resource_names)
        for resource in rule.resources:
            verbs_of.setdefault((rule.group, resource, names), set()).update(rule.verbs)
    merged: dict[tuple[str, tuple[str, ...], tuple[str, ...]], list[str]] = {}
    for (group, resource, names), verbs in verbs_of.items():
        merged.setdefault((group, tuple(sorted(verbs, key=VERB_ORDER.index)), names), []).append(resource)
    out: list[dict[str, Any]] = []
    for (group, verbs_, names), resources in merged.items():
        policy: dict[str, Any] = {"apiGroups": [group], "resources": resources, "verbs": list(verbs_)}
        if names:
            policy["resourceNames"] = list(names)
        out.append(policy)
    return out


def chart_rules_yaml() -> str:
    """The chart's ``files/rules.yaml``: ``{scope: {feature: [PolicyRule]}}``, the Secret's name left open."""
    document = {scope: {feature: policy_rules(scope, [feature]) for feature in FEATURES} for scope in SCOPES}
    header = (
        "# Generated by `python -m asynctask_operator.rbac --write charts/asynctask-operator/files/rules.yaml`\n"
        "# from operator/asynctask_operator/rbac.py. Do not edit.\n"
        f"# {{scope: {{feature: [PolicyRule]}}}}; {REPORT_KEY_SECRET} stands for --report-key-secret.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120)


def gateway_rules_yaml() -> str:
    """The chart's ``files/gateway-rules.yaml``: ``{scope: [PolicyRule]}`` of the gateway's ServiceAccount."""
    document = {scope: policy_rules(scope, rules=GATEWAY_RULES) for scope in ("namespaced", "cluster")}
    header = (
        "# Generated by `python -m asynctask_operator.rbac --gateway --write charts/asynctask-operator/files/"
        "gateway-rules.yaml`\n# from GATEWAY_RULES in operator/asynctask_operator/rbac.py. Do not edit.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120)


def archive_rules_yaml() -> str:
    """The chart's ``files/archive-rules.yaml``: ``{scope: [PolicyRule]}`` of the archiver's ServiceAccount."""
    document = {scope: policy_rules(scope, rules=ARCHIVE_RULES) for scope in ("namespaced", "own-namespace")}
    header = (
        "# Generated by `python -m asynctask_operator.rbac --archive --write charts/asynctask-operator/files/"
        "archive-rules.yaml`\n# from ARCHIVE_RULES in operator/asynctask_operator/rbac.py. Do not edit.\n"
    )
    return header + yaml.safe_dump(document, sort_keys=False, default_flow_style=None, width=120)


def markdown_table(rules: Iterable[Rule] = RULES) -> str:
    """The table of docs/install.md: one row per rule (a unit test keeps the doc in step)."""
    where = {"namespaced": "served namespaces", "own-namespace": "own namespace", "cluster": "cluster",
             "kube-system": "kube-system"}  # fmt: skip
    lines = ["| API group | resources | verbs | where | why |", "| --- | --- | --- | --- | --- |"]
    for r in rules:
        group = f"`{r.group}`" if r.group else '`""` (core)'
        resources = ", ".join(f"`{x}`" for x in r.resources)
        if r.resource_names:
            resources += " named " + ", ".join(f"`{n}`" for n in r.resource_names)
        scope = where[r.scope] + {"always": "", "reports": ", only with `--report-url`"}[r.when]
        verbs = ", ".join(f"`{v}`" for v in r.verbs)
        lines.append(f"| {group} | {resources} | {verbs} | {scope} | {r.reason} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m asynctask_operator.rbac", description="print or write the RBAC rules of the Helm chart"
    )
    parser.add_argument("--write", metavar="FILE", help="write the rules file here instead of printing it")
    parser.add_argument("--markdown", action="store_true", help="print the table of docs/install.md instead")
    parser.add_argument("--gateway", action="store_true", help="the gateway's rules (files/gateway-rules.yaml)")
    parser.add_argument("--archive", action="store_true", help="the archiver's rules (files/archive-rules.yaml)")
    args = parser.parse_args(argv)
    if args.archive:
        text = markdown_table(ARCHIVE_RULES) if args.markdown else archive_rules_yaml()
    elif args.gateway:
        text = markdown_table(GATEWAY_RULES) if args.markdown else gateway_rules_yaml()
    else:
        text = markdown_table() if args.markdown else chart_rules_yaml()
    if args.write:
        pathlib.Path(args.write).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
