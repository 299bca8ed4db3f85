"""docs/design.md §4.5: least-privilege RBAC. The table in ``asynctask_operator.rbac`` matches the code.

The code is read, not run: an AST walk over ``operator/asynctask_operator/`` finds

- every call ``api.<method>(RESOURCE, ...)`` / ``self.api.<method>(RESOURCE, ...)`` on the
  KubeClient (``subresource="status"`` makes it ``RESOURCE/status``). When the first
  argument is a parameter of the enclosing function, the callers of that function in the
  same module say which Resource it is (``self._list(JOBS, ...)``);
- every ``kopf.on.event(...)`` watch (a watch is a list, then a watch);
- every owner reference with ``blockOwnerDeletion: True`` (the API server then wants
  ``update`` on the owner's ``finalizers`` subresource).

Each of those must be granted by ``rbac.RULES``, and everything ``RULES`` grants must be
needed by one of them, but for the exceptions below, each with its reason.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pathlib
import types
import warnings
from collections.abc import Iterator

import pytest

import asynctask_operator
from asynctask_operator import rbac
from asynctask_operator.adapters.kube import Resource

PACKAGE = pathlib.Path(asynctask_operator.__file__).resolve().parent

METHOD_VERBS = {
    "create": "create",
    "get": "get",
    "list_objects": "list",
    "list_pages": "list",
    "watch": "watch",
    "patch": "patch",
    "delete": "delete",
    "replace": "update",
}
"""KubeClient method -> the RBAC verb its request needs."""

KOPF_HANDLERS_WITHOUT_WRITES = {"event", "login", "startup", "cleanup", "probe"}
"""kopf decorators that add no API writes of kopf's own. Change handlers, timers and
daemons store progress in annotations and add finalizers: they would need patch rights."""

Grant = tuple[str, str, str]  # (group, resource, verb)

CALLED_NOT_GRANTED: dict[Grant, tuple[str, str]] = {
    ("apiextensions.k8s.io", "customresourcedefinitions", verb): (
        "asynctask_operator.cli._apply_crds",
        "`asynctask-operator crds --apply` is an admin's install step, never run by the Deployment "
        "(the chart ships the CRDs in crds/)",
    )
    for verb in ("get", "create", "update")
}
"""Calls in the code that the running operator never makes: (module.function allowed to make it, why)."""

PLANNED: dict[Grant, str] = {}
"""Granted for code that is being written alongside the chart. Remove an entry once the code
that needs it is on main (test_planned_grants_still_unused warns when that is the case)."""


@dataclasses.dataclass(frozen=True)
class Use:
    grant: Grant
    where: str  # module.function:line
    function: str  # module.function
    origin: str = ""  # the module that names the Resource (a generic loop's caller)


# --------------------------------------------------------------------------- the AST walk


KUBECTL = "asynctask_operator.kubectl"
"""The kubectl plugin runs on a person's machine with their own credentials, never with the
operator's ServiceAccount: its calls are not the operator's to grant (docs/cli.md)."""


MIGRATIONS = "asynctask_operator.archive.migrations"
"""The archive's Alembic scripts: run by Alembic against a database, never imported as modules."""


def modules() -> Iterator[tuple[types.ModuleType, ast.Module]]:
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name == KUBECTL or name.startswith(KUBECTL + ".") or name.startswith(MIGRATIONS):
            continue
        # __main__ runs the CLI when imported: read it, do not import it (it names no constants)
        module = types.ModuleType(name) if parts[-1] == "__main__" else importlib.import_module(name)
        yield module, ast.parse(path.read_text(), str(path))


def functions(tree: ast.Module) -> Iterator[tuple[ast.FunctionDef | ast.AsyncFunctionDef, list[ast.Call]]]:
    """Each function with the calls in its own body (not those of nested functions)."""

    def own_calls(fn: ast.AST) -> Iterator[ast.Call]:
        for child in ast.iter_child_nodes(fn):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                continue
            if isinstance(child, ast.Call):
                yield child
            yield from own_calls(child)

    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node, list(own_calls(node))


def is_api(receiver: ast.expr) -> bool:
    return (isinstance(receiver, ast.Name) and receiver.id == "api") or (
        isinstance(receiver, ast.Attribute) and receiver.attr == "api"
    )


def callee_name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


class Scanner:
    def __init__(self, module: types.ModuleType, tree: ast.Module) -> None:
        self.module = module
        self.functions = list(functions(tree))
        self.others: list[Scanner] = [self]
        """Every module's scanner: a generic loop (adapters/reflector.py) is called from another module."""

    def where(self, fn: ast.AST, node: ast.AST) -> str:
        return f"{self.module.__name__}.{getattr(fn, 'name', '?')}:{getattr(node, 'lineno', '?')}"

    def resources(
        self, expr: ast.expr, fn: ast.FunctionDef | ast.AsyncFunctionDef, depth: int = 0
    ) -> list[tuple[Resource, str]]:
        """The Resource constant(s) ``expr`` can be, with the module whose code names each."""
        if not isinstance(expr, ast.Name):
            pytest.fail(f"{self.where(fn, expr)}: pass a Resource constant of adapters.kube, not {ast.unparse(expr)}")
        params = [a.arg for a in fn.args.posonlyargs + fn.args.args]
        if expr.id not in params:
            value = getattr(self.module, expr.id, None)
            if not isinstance(value, Resource):
                pytest.fail(f"{self.where(fn, expr)}: {expr.id} is not a Resource constant")
            return [(value, self.module.__name__)]
        assert depth < 5, f"{self.where(fn, expr)}: too deep a chain of wrappers"
        index = params.index(expr.id) - (1 if params and params[0] in ("self", "cls") else 0)
        found: list[tuple[Resource, str]] = []
        for scanner, caller, call in self.callers(fn):
            arg = next((k.value for k in call.keywords if k.arg == expr.id), None)
            if arg is None and index < len(call.args):
                arg = call.args[index]
            if arg is None:
                pytest.fail(f"{scanner.where(caller, call)}: cannot tell which resource {fn.name}() gets")
            found.extend(scanner.resources(arg, caller, depth + 1))
        if not found:
            pytest.fail(f"{self.where(fn, expr)}: {expr.id} is a parameter, and {fn.name}() has no caller here")
        return found

    def callers(
        self, fn: ast.FunctionDef | ast.AsyncFunctionDef
    ) -> Iterator[tuple[Scanner, ast.FunctionDef | ast.AsyncFunctionDef, ast.Call]]:
        """The calls of ``fn``: in its own module, and in every module that imports it (the same object)."""
        for scanner in self.others:
            if scanner is not self and getattr(scanner.module, fn.name, None) is not getattr(self.module, fn.name, 0):
                continue
            for caller, calls in scanner.functions:
                for call in calls:
                    if callee_name(call) == fn.name:
                        yield scanner, caller, call

    def api_calls(self) -> Iterator[Use]:
        for fn, calls in self.functions:
            for call in calls:
                func = call.func
                if isinstance(func, ast.Attribute) and func.attr == "pod_log":  # KubeClient.pod_log, on any client
                    name = f"{self.module.__name__}.{fn.name}"
                    yield Use(("", "pods/log", "get"), self.where(fn, call), name)
                    continue
                if not (isinstance(func, ast.Attribute) and func.attr in METHOD_VERBS and is_api(func.value)):
                    continue
                if not call.args:
                    pytest.fail(f"{self.where(fn, call)}: the resource must be the first positional argument")
                sub = next((k.value for k in call.keywords if k.arg == "subresource"), None)
                suffix = ""
                if sub is not None:
                    if not isinstance(sub, ast.Constant) or not isinstance(sub.value, str):
                        pytest.fail(f"{self.where(fn, call)}: subresource must be a string literal")
                    suffix = f"/{sub.value}"
                for resource, origin in self.resources(call.args[0], fn):
                    yield Use(
                        (resource.group, resource.plural + suffix, METHOD_VERBS[func.attr]),
                        self.where(fn, call),
                        f"{self.module.__name__}.{fn.name}",
                        origin,
                    )

    def string(self, expr: ast.expr, fn: ast.AST) -> str:
        if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
            return expr.value
        if isinstance(expr, ast.Name) and isinstance(getattr(self.module, expr.id, None), str):
            value: str = getattr(self.module, expr.id)
            return value
        pytest.fail(f"{self.where(fn, expr)}: {ast.unparse(expr)} is neither a string literal nor a str constant")

    def kopf_watches(self) -> Iterator[Use]:
        for fn, calls in self.functions:
            for call in calls:
                func = call.func
                if not (
                    isinstance(func, ast.Attribute)
                    and isinstance(func.value, ast.Attribute)
                    and func.value.attr == "on"
                    and isinstance(func.value.value, ast.Name)
                    and func.value.value.id == "kopf"
                ):
                    continue
                if func.attr not in KOPF_HANDLERS_WITHOUT_WRITES:
                    pytest.fail(
                        f"{self.where(fn, call)}: kopf.on.{func.attr} makes kopf write annotations/finalizers; "
                        "grant patch on the resource in rbac.py and teach this test about it"
                    )
                if func.attr != "event":
                    continue
                args = [self.string(a, fn) for a in call.args]
                kw = {k.arg: self.string(k.value, fn) for k in call.keywords if k.arg in ("group", "version", "plural")}
                if len(args) == 3:
                    group, _, plural = args
                elif len(args) == 2 and "/" in args[0]:
                    group, plural = args[0].split("/")[0], args[1]
                elif len(args) == 2 and args[0].startswith("v") and args[0][1:2].isdigit():
                    group, plural = "", args[1]  # ("v1", "pods"): the core group
                elif not args and "plural" in kw:
                    group, plural = kw.get("group", ""), kw["plural"]
                else:
                    pytest.fail(f"{self.where(fn, call)}: teach this test the form of kopf.on.event{tuple(args)}")
                for verb in ("list", "watch"):
                    yield Use((group, plural, verb), self.where(fn, call), f"{self.module.__name__}.{fn.name}")

    def owner_references(self) -> Iterator[Use]:
        """Owner references with blockOwnerDeletion: True need update on the owner's finalizers."""
        for fn, _ in self.functions:
            for node in ast.walk(fn):
                if not isinstance(node, ast.Dict):
                    continue
                keys = {k.value: v for k, v in zip(node.keys, node.values, strict=True) if isinstance(k, ast.Constant)}
                block = keys.get("blockOwnerDeletion")
                if not (isinstance(block, ast.Constant) and block.value is True):
                    continue
                kind = self.string(keys["kind"], fn)
                group = self.string(keys["apiVersion"], fn).rpartition("/")[0]
                plural = kind.lower() + "s"
                yield Use((group, f"{plural}/finalizers", "update"), self.where(fn, node), self.module.__name__)


def scan() -> list[Use]:
    uses: list[Use] = []
    scanners = [Scanner(module, tree) for module, tree in modules()]
    for scanner in scanners:
        scanner.others = scanners
    for scanner in scanners:
        uses.extend(scanner.api_calls())
        uses.extend(scanner.kopf_watches())
        uses.extend(scanner.owner_references())
    return uses


GATEWAY = "asynctask_operator.gateway"
"""The gateway is another Deployment with its own ServiceAccount: its calls are held to
``rbac.GATEWAY_RULES`` by tests/unit/test_gateway_rbac.py, not to the operator's."""


def of_gateway(use: Use) -> bool:
    return (use.origin or use.function).startswith(GATEWAY)


ARCHIVE = "asynctask_operator.archive"
"""The archiver too (``asynctask-archive``, its own ServiceAccount): held to ``rbac.ARCHIVE_RULES`` by
tests/unit/test_archive_rbac.py."""


def of_archive(use: Use) -> bool:
    return (use.origin or use.function).startswith(ARCHIVE)


CLUSTER_PLAYED = ("asynctask_operator.testing.realobjects", "asynctask_operator.testing.jobrunner")
"""The testing kit's play of the cluster's own controllers (the Job controller, the scheduler, the
kubelet): their writes are theirs, not the operator's."""


def of_the_cluster(use: Use) -> bool:
    return (use.origin or use.function).startswith(CLUSTER_PLAYED)


@pytest.fixture(scope="module")
def uses() -> list[Use]:
    return [use for use in scan() if not of_gateway(use) and not of_archive(use) and not of_the_cluster(use)]


# --------------------------------------------------------------------------- the checks


def test_the_scan_sees_the_known_calls(uses: list[Use]) -> None:
    """Guards the scanner itself: calls known to exist are found, wrappers resolved."""
    found = {u.grant for u in uses}
    assert ("batch", "jobs", "create") in found  # self.api.create(JOBS, ...)
    assert ("asynctask.dev", "asynctasks/status", "patch") in found  # subresource="status"
    assert ("batch", "jobs", "list") in found  # self._list(JOBS, OWNED_SELECTOR)
    assert ("", "pods", "watch") in found  # Informer.watch("pod", PODS, ...)
    assert ("asynctask.dev", "taskqueues", "list") in found  # Informer.list_into_cache("taskqueue", TASKQUEUES, ...)
    assert ("asynctask.dev", "asynctasks/finalizers", "update") in found  # blockOwnerDeletion on Jobs
    assert ("apiextensions.k8s.io", "customresourcedefinitions", "update") in found  # api.replace(CRDS, ...)


def test_every_call_and_watch_is_granted(uses: list[Use]) -> None:
    granted = rbac.grants()
    missing = []
    for use in uses:
        if use.grant in granted:
            continue
        allowed = CALLED_NOT_GRANTED.get(use.grant)
        if allowed is not None and use.function == allowed[0]:
            continue
        missing.append(f"{use.grant} at {use.where}")
    assert not missing, "the code needs permissions that rbac.RULES does not grant:\n" + "\n".join(missing)


def test_nothing_granted_is_unused(uses: list[Use]) -> None:
    unused = rbac.grants() - {u.grant for u in uses} - set(PLANNED)
    assert not unused, f"rbac.RULES grants what no code needs (remove it, or explain it here): {sorted(unused)}"


def test_exceptions_are_still_true(uses: list[Use]) -> None:
    found = {u.grant for u in uses}
    granted = rbac.grants()
    for grant in CALLED_NOT_GRANTED:
        assert grant in found, f"{grant} is no longer called: remove it from CALLED_NOT_GRANTED"
        assert grant not in granted, f"{grant} is granted after all: remove it from CALLED_NOT_GRANTED"
    for grant in PLANNED:
        assert grant in granted, f"{grant} is planned but not granted by rbac.RULES"


def test_planned_grants_still_unused(uses: list[Use]) -> None:
    landed = sorted(set(PLANNED) & {u.grant for u in uses})
    if landed:
        warnings.warn(f"now used by the code, remove from PLANNED in {__file__}: {landed}", stacklevel=1)


def test_kopf_adds_no_permissions_of_its_own() -> None:
    """The table assumes kopf posts no Events, scans no CRDs or namespaces, and runs no peering."""
    runtime = PACKAGE / "controllers" / "process.py"
    tree = ast.parse(runtime.read_text())
    assigned = {
        (ast.unparse(t), ast.unparse(node.value))
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        for t in node.targets
    }
    assert ("settings.posting.enabled", "False") in assigned, "kopf would post Events: grant events create"
    assert ("settings.scanning.disabled", "True") in assigned, "kopf would scan CRDs/namespaces: grant list/watch"
    [operator_call] = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and ast.unparse(n.func) == "kopf.operator"]
    standalone = {k.arg: ast.unparse(k.value) for k in operator_call.keywords}.get("standalone")
    assert standalone == "True", "kopf peering would need kopfpeerings get/list/watch/patch"


# --------------------------------------------------------------------------- rendering


def test_every_verb_and_scope_is_known() -> None:
    for rule in rbac.RULES:
        assert set(rule.verbs) <= set(rbac.VERB_ORDER), rule
        assert rule.scope in rbac.SCOPES and rule.when in rbac.FEATURES, rule
        assert rule.reason and "\n" not in rule.reason, rule
        if rule.resource_names:
            assert not set(rule.verbs) & {"create", "list", "watch", "deletecollection"}, (
                f"{rule}: resourceNames cannot limit create, list or watch; that rule would deny them"
            )


def test_policy_rules_grant_exactly_the_table() -> None:
    rendered: set[Grant] = set()
    for scope in rbac.SCOPES:
        for policy in rbac.policy_rules(scope, report_key_secret="k"):
            [group] = policy["apiGroups"]
            rendered |= {(group, res, verb) for res in policy["resources"] for verb in policy["verbs"]}
    assert rendered == rbac.grants()


def test_the_report_key_secret_is_named_in_the_role() -> None:
    [get, create] = rbac.policy_rules("own-namespace", ["reports"], report_key_secret="my-key")
    assert get == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["my-key"]}
    assert create == {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]}
    assert rbac.policy_rules("own-namespace", ["always"]) == [
        {"apiGroups": ["coordination.k8s.io"], "resources": ["leases"], "verbs": ["get", "create", "patch"]},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["patch"]},
    ]  # the leader-election Lease and the leader label on its own pod, with or without reports


def test_the_running_operator_needs_nothing_cluster_scoped() -> None:
    assert rbac.policy_rules("cluster") == []


def test_docs_show_the_table() -> None:
    doc = (PACKAGE.parents[1] / "docs" / "install.md").read_text()
    assert rbac.markdown_table() in doc, (
        "the RBAC table of docs/install.md is stale: replace it with `python -m asynctask_operator.rbac --markdown`"
    )
