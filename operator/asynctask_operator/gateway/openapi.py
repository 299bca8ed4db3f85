"""The gateway's OpenAPI 3.1 document, as committed in ``docs/gateway-openapi.json``.

    python -m asynctask_operator.gateway.openapi --write docs/gateway-openapi.json

``tests/unit/test_gateway_openapi.py`` fails when the committed file differs from what the code serves.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys
from collections.abc import Sequence
from typing import Any

from asynctask_operator.gateway.app import application
from asynctask_operator.gateway.settings import GatewaySettings

DOCUMENT = "docs/gateway-openapi.json"


def document() -> dict[str, Any]:
    spec: dict[str, Any] = application(GatewaySettings()).openapi()
    return spec


def text() -> str:
    return json.dumps(document(), indent=2, sort_keys=True) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m asynctask_operator.gateway.openapi")
    parser.add_argument("--write", metavar="FILE", help=f"write the document here (the committed one: {DOCUMENT})")
    args = parser.parse_args(argv)
    if args.write:
        pathlib.Path(args.write).write_text(text())
    else:
        sys.stdout.write(text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
