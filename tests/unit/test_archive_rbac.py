"""The archiver's ServiceAccount: ``rbac.ARCHIVE_RULES`` grants what ``asynctask-archive`` calls, and no more.

The same AST scan as the operator's (tests/unit/test_rbac.py), over the calls the archive's modules
make or drive (the list/watch loop they call with ASYNCTASKS), plus the Lease calls of the leader
election it runs (adapters/election.py, shared with the operator).
"""

from __future__ import annotations

import inspect

from asynctask_operator import rbac
from asynctask_operator.archive import process
from tests.unit.test_rbac import of_archive, scan

ELECTION = {("coordination.k8s.io", "leases", verb) for verb in ("get", "create", "patch")}


def archive_grants() -> set[tuple[str, str, str]]:
    found = {use.grant for use in scan() if of_archive(use)}
    if "LeaderElector(" in inspect.getsource(process):
        found |= ELECTION
    return found


def test_the_scan_sees_the_archivers_calls() -> None:
    found = archive_grants()
    assert ("asynctask.dev", "asynctasks", "watch") in found  # reflect(self.api, ASYNCTASKS, ...)
    assert ("asynctask.dev", "asynctasks", "patch") in found  # the mark
    assert ("", "pods/log", "get") in found  # api.pod_log(...)


def test_every_call_is_granted_and_nothing_more() -> None:
    granted = rbac.grants(rbac.ARCHIVE_RULES)
    found = archive_grants()
    assert not found - granted, f"the archiver needs what ARCHIVE_RULES does not grant: {sorted(found - granted)}"
    assert not granted - found, f"ARCHIVE_RULES grants what the archiver never calls: {sorted(granted - found)}"


def test_the_archiver_writes_only_marks_events_and_its_lease() -> None:
    writes = {(g, r, v) for g, r, v in rbac.grants(rbac.ARCHIVE_RULES) if v in ("create", "update", "patch", "delete")}
    assert writes == {("asynctask.dev", "asynctasks", "patch"), ("", "events", "create")} | {
        g for g in ELECTION if g[2] != "get"
    }
