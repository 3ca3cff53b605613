"""Printing for commands: ``--json`` is one JSON document on stdout; human text is readable Chinese/English."""

from __future__ import annotations

import json
import sys
from typing import Any


def print_json(document: Any) -> None:
    json.dump(document, sys.stdout, ensure_ascii=False, indent=2, default=str)
    sys.stdout.write("\n")


def warn(text: str) -> None:
    print(text, file=sys.stderr)
