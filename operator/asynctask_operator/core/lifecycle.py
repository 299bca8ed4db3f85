"""The next state of a task, decided from what is observed and the time — nothing else.

:func:`decide` is the whole lifecycle of an AsyncTask as one pure function. It is
level-based: it looks at the task, its TaskType, the Jobs it owns and their pods,
and returns what must change. Called twice with the same inputs it returns the same
decision, so a repeated or missed event, or a crash between two writes, cannot cause
a wrong transition: the next call sees what did and did not happen and carries on.

Phases::

    Pending --admit--> Running --success--> Succeeded
       ^                  |  \\--failure, retries left--> Retrying --due--> (admit next attempt)
       |                  \\--failure, no retry--> Failed
       \\--retry-requested annotation-- Failed | Cancelled
    any unfinished phase --spec.cancel--> Cancelled;  --deadlineSeconds--> Failed/DeadlineExceeded
    any unfinished phase --a newer task of its key with policy CancelInProgress--> Cancelled/Superseded
    Pending --its key busy, policy CancelNewest--> Cancelled/KeyBusy
    finished --TTL passed (and, with the archive required, the archive's mark on it)--> deleted
"""

from __future__ import annotations

import datetime as dt

from asynctask_operator.core import archiving, callbacks
from asynctask_operator.core import conditions as cond
from asynctask_operator.core.acts import RETRY_ANNOTATION, RETRYABLE_PHASES
from asynctask_operator.core.callback_step import record_callback
from asynctask_operator.core.concurrency import resolve_concurrency
from asynctask_operator.core.config import CoreConfig
from asynctask_operator.core.draft import Admission, Decision, Draft, Observed, after
from asynctask_operator.core.jobs import render_job
from asynctask_operator.core.models import TERMINAL_PHASES, Attempt, FairTurn, RetryRound, TaskError
from asynctask_operator.core.naming import job_name
from asynctask_operator.core.observed import JobView
from asynctask_operator.core.outcomes import AttemptResult, attempt_result
from asynctask_operator.core.report_intake import report_env, take_reports
from asynctask_operator.core.reporting import result_from_termination_message
from asynctask_operator.core.retry import next_retry_delay, retries_allowed, retry_verdict
from asynctask_operator.core.timestamps import ceil_second, parse_stamp, stamp
from asynctask_operator.core.validation import Refusal, check_job_template, check_payload, check_payload_schema
from asynctask_operator.core.waiting import WAITING_FOR_KEY

SUPERSEDED = "Superseded"

__all__ = ["RETRY_ANNOTATION", "Admission", "Decision", "Observed", "decide", "refuse"]


def decide(obs: Observed, config: CoreConfig) -> Decision:
    """What to do about one task now: the writes, and the Events and metrics they mean.

    Called once per reconcile. When the task is ready to start an attempt and holds no slot,
    it asks its queue for one (:meth:`Admission.ask`, an in-memory reservation) at that very
    point, and carries on with the answer."""
    if obs.task.metadata.deletion_timestamp:
        return Decision()  # being deleted: the garbage collector takes its Jobs
    draft = Draft(obs, config)
    _lifecycle(draft)
    if not draft.held:
        record_callback(draft)
    return draft.decision()


def _lifecycle(draft: Draft) -> None:
    obs, task = draft.obs, draft.obs.task
    if draft.phase in TERMINAL_PHASES:
        _finished(draft)
        return

    if draft.phase in ("Pending", "Retrying") and draft.attempt + 1 in obs.jobs:
        window = _short_window(draft, obs.jobs[draft.attempt + 1])
        if window is not None:
            draft.hold(window)  # its Job runs; Running is written when the window ends, or with its end
            return
        _adopt_unrecorded_attempt(draft)

    if task.spec.cancel and not _attempt_already_ended(draft):
        _finish(draft, "Cancelled", "Cancelled", "cancelled by spec.cancel", outcome="Cancelled")
        _finished(draft)
        return

    if obs.superseded_by and not _attempt_already_ended(draft):
        concurrency = draft.effective().concurrency
        key = concurrency.key if concurrency else ""
        message = (
            f"superseded by the newer task {obs.superseded_by} with concurrency key {key!r} (policy CancelInProgress)"
        )
        _finish(draft, "Cancelled", SUPERSEDED, message, outcome="Cancelled")
        _finished(draft)
        return

    if _past_deadline(draft):
        return

    if draft.phase == "Retrying":
        due = parse_stamp(draft.fields.get("next_retry_time"))
        if due is not None and due > obs.now:
            draft.due.append(due)
            return
        draft.set(next_retry_time=None)
        _admit(draft)
    elif draft.phase == "Pending":
        _admit(draft)

    if draft.phase == "Running":
        _watch_attempt(draft)
    if draft.phase in TERMINAL_PHASES:
        _finished(draft)


# --------------------------------------------------------------------------- steps


def _adopt_unrecorded_attempt(draft: Draft) -> None:
    """The next attempt's Job exists, though the status does not record the attempt.

    Its Job was created, and the status write that records it did not happen: the operator
    crashed in between, or the write was refused because the task changed meanwhile (a user
    cancelling it just as it started). The attempt ran, so it is recorded first, whatever
    comes next (a cancel, the deadline, the Job's own end): attempts stay numbered as they
    ran, and a later attempt never reuses this Job's name."""
    draft.set(next_retry_time=None)
    _admit(draft)


def _short_window(draft: Draft, job: JobView | None = None) -> dt.datetime | None:
    """When the short-attempt window of the next attempt's Job ends, if it is open now; else None.

    Open while the Job (``job``, or the one this decision creates) is younger than
    ``short_attempt_seconds`` and running, and nothing else is to be written: no cancel, no newer
    task superseding it, no deadline passed, no callback of the Running event. Measured from the
    Job's creationTimestamp, which has whole seconds: from the second after it, so that the
    window is never shorter than configured. Read from the objects alone: a restart, or another
    reconcile, decides the same."""
    obs, seconds = draft.obs, draft.config.short_attempt_seconds
    if seconds <= 0 or obs.task.spec.cancel or obs.superseded_by:
        return None
    if job is not None and (job.finished or job.deleting):
        return None
    effective = draft.effective()
    if effective.callback is not None and "Running" in callbacks.events_of(effective.callback):
        return None
    created = parse_stamp(job.creation_timestamp) if job is not None else obs.now
    if created is None:
        return None
    ends = after(created, seconds + (1 if job is not None else 0))
    deadline = _deadline(draft)
    if obs.now >= ends or (deadline is not None and obs.now >= deadline):
        return None
    return min(ends, deadline) if deadline is not None else ends


def _deadline(draft: Draft) -> dt.datetime | None:
    effective = draft.effective()
    if not effective.deadline_seconds:
        return None
    since = parse_stamp(draft.fields.get("queued_time")) or parse_stamp(draft.obs.task.metadata.creation_timestamp)
    return after(since, effective.deadline_seconds) if since is not None else None


def _attempt_already_ended(draft: Draft) -> bool:
    """The running attempt's Job has finished, though the status does not say so yet.

    Its outcome happened before a cancel or deadline is noticed, so it is recorded first:
    a task whose Job completed ends Succeeded even if cancel came in the meantime."""
    job = draft.obs.jobs.get(draft.attempt)
    return draft.phase == "Running" and job is not None and job.finished


def _past_deadline(draft: Draft) -> bool:
    """Fail the task when its whole-task deadline has passed; else remember when it falls due."""
    effective = draft.effective()
    if not effective.deadline_seconds:
        return False
    since = parse_stamp(draft.fields.get("queued_time")) or parse_stamp(draft.obs.task.metadata.creation_timestamp)
    if since is None:
        return False
    deadline = after(since, effective.deadline_seconds)
    if draft.obs.now < deadline:
        draft.due.append(deadline)
        return False
    if _attempt_already_ended(draft):
        # Seen late (say, after a restart): the attempt's own outcome stands and is recorded
        # first; a retry it would earn is then cut off by the deadline on the next look.
        draft.due.append(deadline)
        return False
    _finish(
        draft,
        "Failed",
        "DeadlineExceeded",
        f"the task did not finish within deadlineSeconds={effective.deadline_seconds}",
        outcome="Cancelled",
    )
    _finished(draft)
    return True


def _refuse(draft: Draft, refusal: Refusal) -> None:
    draft.set(effective=draft.effective().model_dump())
    _finish(draft, "Failed", refusal.reason, refusal.message)


def _admit(draft: Draft) -> None:
    """Start the next attempt: check the type and payload, then create its Job."""
    obs = draft.obs
    task, tasktype = obs.task, obs.tasktype
    if tasktype is None:
        age = (obs.now - (parse_stamp(task.metadata.creation_timestamp) or obs.now)).total_seconds()
        grace = draft.config.unknown_type_grace_seconds
        if not obs.types_synced or (age < grace and draft.attempt == 0):
            draft.due.append(after(obs.now, max(grace - age, 0.5)))
            return
        _refuse(
            draft,
            Refusal(
                "UnknownTaskType",
                f"TaskType {task.spec.type!r} does not exist in namespace {task.metadata.namespace}: "
                "create it, or fix spec.type (it cannot change: recreate the task)",
            ),
        )
        return
    try:
        check_job_template(tasktype.spec.job_template)
        check_payload_schema(tasktype.spec.payload_schema)
        check_payload(tasktype, task.spec.payload, draft.config.payload_limit_bytes)
        if draft.fields.get("effective") is None:  # the key is resolved once: a refusal names what is wrong
            defaults = tasktype.spec.defaults
            default = defaults.concurrency if defaults else None
            resolve_concurrency(task.spec.concurrency, default, task.spec.payload, task.metadata.labels)
    except Refusal as refusal:
        _refuse(draft, refusal)
        return

    first_admission = draft.fields.get("effective") is None
    effective = draft.effective()
    attempt = draft.attempt + 1
    name = job_name(task.metadata.name, attempt)
    existing = obs.jobs.get(attempt)
    if first_admission:  # what is in force is fixed when the task first enters its queue
        draft.set(
            effective=effective.model_dump(),
            queued_time=draft.fields.get("queued_time") or task.metadata.creation_timestamp or draft.now,
            round=RetryRound(first_attempt=1, requested=task.metadata.annotations.get(RETRY_ANNOTATION)).model_dump(),
        )
    # A Job that exists already was admitted before a crash: it is adopted, not queued again.
    admission = obs.admission.ask(effective) if existing is None else obs.admission
    if existing is None and admission.refused:  # CancelNewest, its key busy
        _finish(draft, "Cancelled", admission.reason, admission.message)
        return
    if existing is None and not admission.granted:  # wait for the queue, or the key
        _wait(draft, admission)
        return
    if existing is None:
        draft.create_job = render_job(task, tasktype, attempt, effective, report_env(draft, attempt))
        window = _short_window(draft)
        if window is not None and draft.phase == draft.obs.task.phase:
            draft.hold(window)  # the Job now; the status when it ends, or when the window does
            return
    draft.set(waiting_for_key=None)
    if admission.fairness is not None and (admission.fairness.turn is not None or not draft.fields.get("fairness")):
        draft.set(fairness=admission.fairness.model_dump())  # an adopted Job's answer may know no turn: keep one
    if effective.concurrency is not None:
        draft.condition(cond.KEY_ACQUIRED, True, "KeyAcquired", f"holds concurrency key {effective.concurrency.key!r}")
    started = (existing.creation_timestamp if existing is not None else None) or draft.now  # an adopted Job's own
    draft.set(attempt=attempt, start_time=draft.fields.get("start_time") or started)
    draft.record_attempt(Attempt(attempt=attempt, job=name, start_time=started))
    total = _attempts_allowed(draft)
    draft.move("Running", "JobCreated", f"attempt {attempt} of {total} running as Job {name}")
    draft.condition(cond.ADMITTED, True, "Admitted", f"admitted to queue {effective.queue}")
    draft.condition(cond.RUNNING, True, "JobCreated", f"attempt {attempt} running as Job {name}")


def _wait(draft: Draft, admission: Admission) -> None:
    """Wait Pending. Written only when the reason changes (the holders named are those when the wait
    began): a reason rewritten at every change of the queue would cost a write per task each time."""
    draft.wants_admission = True
    if draft.phase != "Pending" or draft.fields.get("reason") != admission.reason:
        wait = admission.key_wait
        draft.set(next_retry_time=None, waiting_for_key=wait.model_dump() if wait else None)
        draft.move("Pending", admission.reason, admission.message)
        if admission.reason == WAITING_FOR_KEY:
            draft.condition(cond.KEY_ACQUIRED, False, WAITING_FOR_KEY, admission.message)
    group = admission.fairness.group if admission.fairness else None
    if group is not None and (draft.fields.get("fairness") or {}).get("group") != group:
        draft.set(fairness=FairTurn(group=group).model_dump())  # where a reader places it (core/positions.py)


def _attempts_allowed(draft: Draft) -> int:
    first = int((draft.fields.get("round") or {}).get("first_attempt") or 1)
    return first - 1 + retries_allowed(draft.effective().retry) + 1


def _watch_attempt(draft: Draft) -> None:
    """Follow the running attempt's Job to its end."""
    obs = draft.obs
    attempt = draft.attempt
    job = obs.jobs.get(attempt)
    if job is None and draft.create_job is not None:
        return  # its Job is being created in this very decision
    effective = draft.effective()
    pods = obs.pods.get(job.name, ()) if job is not None else ()
    result = attempt_result(job, pods, effective.timeout_seconds)
    if result is None:
        take_reports(draft, final=False)
        return
    if job is not None and not job.finished and not job.deleting:
        draft.delete_job = job.name
    _end_attempt(draft, result, job)
    take_reports(draft, final=True)
    if result.succeeded:
        if draft.fields.get("result") is None and result.termination_message:
            draft.set(
                result=result_from_termination_message(result.termination_message, draft.config.result_limit_bytes)
            )
        _finish(draft, "Succeeded", "Completed", f"attempt {attempt} succeeded")
        return
    round_ = draft.fields.get("round") or {}
    in_round = attempt - int(round_.get("first_attempt") or 1) + 1
    verdict = retry_verdict(effective.retry, in_round, result)
    if not verdict.retry:
        _finish(draft, "Failed", verdict.reason, verdict.message)
        return
    delay = next_retry_delay(effective.retry, in_round, obs.jitter_sample)
    # Rounded up to a whole second: nextRetryTime is written in whole seconds and is what a
    # restarted operator waits for, so the wait is never shortened by the rounding.
    due = ceil_second(after(obs.now, delay))
    draft.set(next_retry_time=stamp(due))
    draft.due.append(due)
    draft.move(
        "Retrying",
        result.reason,
        f"attempt {attempt} of {_attempts_allowed(draft)} failed ({result.message}); next attempt at {stamp(due)}",
    )


def _end_attempt(draft: Draft, result: AttemptResult, job: JobView | None) -> None:
    last = draft.last_attempt()
    if last is None or last.outcome is not None:
        return
    draft.record_attempt(
        last.model_copy(
            update={
                "finish_time": (job.completion_time if job and job.completion_time else None) or draft.now,
                "outcome": result.outcome,
                "exit_code": result.exit_code,
                "reason": result.reason,
                "message": result.message,
            }
        )
    )


def _finish(draft: Draft, phase: str, reason: str, message: str, outcome: str | None = None) -> None:
    """Move to a terminal phase; a running attempt ends with ``outcome``."""
    job = draft.obs.jobs.get(draft.attempt)
    if outcome is not None and draft.phase == "Running":
        last = draft.last_attempt()
        if last is not None and last.outcome is None:
            draft.record_attempt(
                last.model_copy(
                    update={
                        "finish_time": draft.now,
                        "outcome": outcome,
                        "reason": reason,
                        "message": message,
                    }
                )
            )
        if job is not None and not job.finished and not job.deleting:
            draft.delete_job = job.name
    start = parse_stamp(draft.fields.get("start_time"))
    draft.set(
        completion_time=draft.now,
        duration_seconds=round((draft.obs.now - start).total_seconds(), 3) if start else 0.0,
        next_retry_time=None,
        waiting_for_key=None,
        error=None if phase == "Succeeded" else TaskError(code=reason, message=message).model_dump(),
    )
    if draft.fields.get("effective") is None:
        draft.set(effective=draft.effective().model_dump())
    if draft.fields.get("round") is None:
        # Ended before it was ever admitted: a retry annotation it carries already came with
        # its manifest, so it is not a request to run again (only a new value is).
        requested = draft.obs.task.metadata.annotations.get(RETRY_ANNOTATION)
        draft.set(round=RetryRound(first_attempt=draft.attempt + 1, requested=requested).model_dump())
    draft.move(phase, reason, message)
    draft.condition(cond.SUCCEEDED, phase == "Succeeded", reason, message)
    draft.condition(cond.FAILED, phase == "Failed", reason, message)


def _finished(draft: Draft) -> None:
    """A finished task: honour a manual retry, clean up a Job left running, expire by TTL."""
    obs = draft.obs
    requested = obs.task.metadata.annotations.get(RETRY_ANNOTATION)
    honoured = (draft.fields.get("round") or {}).get("requested")
    if (
        requested is not None
        and requested != honoured
        and draft.phase in RETRYABLE_PHASES
        and not obs.task.spec.cancel
        and draft.delete_job is None
    ):
        draft.set(
            phase="Pending",
            reason="RetryRequested",
            message=f"retry requested ({RETRY_ANNOTATION}={requested})",
            completion_time=None,
            duration_seconds=None,
            start_time=None,  # the new round's duration counts from its own first attempt
            error=None,
            queued_time=draft.now,
            round=RetryRound(first_attempt=draft.attempt + 1, requested=requested).model_dump(),
            conditions=[c for c in draft.fields.get("conditions") or () if c["type"] == cond.ADMITTED],
        )
        if draft.attempt == 0:  # never admitted: what is in force is resolved at its first admission
            draft.set(effective=None)
        _admit(draft)
        if draft.phase == "Running":
            _watch_attempt(draft)
        return

    if draft.delete_job is None:  # a crash may have left a Job running after the task ended
        running = sorted(j.name for j in obs.jobs.values() if not j.finished and not j.deleting)
        draft.delete_job = running[0] if running else None

    done = parse_stamp(draft.fields.get("completion_time"))
    if done is None:
        return
    ttl = draft.effective().ttl_for(draft.phase)
    expires = after(done, ttl)
    if obs.now < expires:
        draft.due.append(expires)
    elif draft.config.archive_required and not archiving.archived(obs.task):
        pass  # held until the archive holds this state: its mark's watch event brings the task back
    else:
        draft.delete_task = True


def refuse(obs: Observed, config: CoreConfig, reason: str, message: str) -> Decision:
    """End a task that cannot start for a reason only the API server could tell (its Job was refused)."""
    draft = Draft(obs, config)
    _refuse(draft, Refusal(reason, message))
    record_callback(draft)
    return draft.decision()
