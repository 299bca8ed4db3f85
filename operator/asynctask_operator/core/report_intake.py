"""The decision steps for what a running attempt reports: its credentials in, its progress and result taken.

An attempt's pod gets a URL and a token to post progress and a result to
(:func:`report_env`, rendered into its Job); what it posted is put into the task's status by
:func:`take_reports`, within the progress write budget.
"""

from __future__ import annotations

import datetime as dt

from asynctask_operator.core.draft import Draft
from asynctask_operator.core.models import Progress
from asynctask_operator.core.reporting import mint_token


def report_env(draft: Draft, attempt: int) -> dict[str, str] | None:
    config, meta = draft.config, draft.obs.task.metadata
    if not config.report_url or not config.report_key:
        return None
    base = config.report_url.rstrip("/")
    return {
        "ASYNCTASK_REPORT_URL": f"{base}/v1/namespaces/{meta.namespace}/asynctasks/{meta.name}",
        "ASYNCTASK_REPORT_TOKEN": mint_token(config.report_key, meta.namespace, meta.name, meta.uid, attempt),
    }


def take_reports(draft: Draft, final: bool) -> None:
    """Put what the running attempt reported into the status.

    A result is written at once (it must survive a restart); progress at most once per
    ``progress_interval_seconds`` (the latest wins), and always with the attempt's end."""
    reported = draft.obs.reported
    if reported is None or reported.attempt != draft.attempt:
        return
    if reported.has_result and draft.fields.get("result") != reported.result:
        draft.set(result=reported.result)
    if reported.progress is None:
        return
    progress = Progress.model_validate(reported.progress).model_dump()
    if draft.fields.get("progress") == progress:
        return
    written = reported.progress_written_at
    interval = dt.timedelta(seconds=draft.config.progress_interval_seconds)
    if (
        final
        or draft.fields.get("result") != draft.obs.task.status.result
        or written is None
        or draft.obs.now - written >= interval
    ):
        draft.set(progress=progress)
    else:
        draft.due.append(written + interval)
