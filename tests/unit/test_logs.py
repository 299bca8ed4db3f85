"""The processes' log: one JSON object a line, Python's warnings included."""

from __future__ import annotations

import json
import subprocess
import sys

SCRIPT = """
import warnings
from asynctask_operator.logs import setup_logging
setup_logging("json")
warnings.warn("a library's warning", UserWarning)
"""


def test_a_warning_is_one_json_line_of_the_log() -> None:
    # A process of its own: pytest records warnings itself, in place of the log's handler.
    err = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=True).stderr
    [line] = err.splitlines()
    record = json.loads(line)
    assert (record["level"], record["logger"]) == ("warning", "py.warnings")
    assert "UserWarning: a library's warning" in record["message"]
