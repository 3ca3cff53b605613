"""Our import names are generic (``daemon``, ``notifiers``): fail clearly if another package shadows them.

PyPI has a ``daemon`` distribution of its own (and ``python-daemon`` is commonly installed); if one of them
sat earlier on ``sys.path``, every other test would fail with a confusing error. This one says what is wrong.
"""

from __future__ import annotations

import importlib
import importlib.metadata
from pathlib import Path

import pytest

from tests.conftest import ROOT


def dist_files() -> set[Path]:
    """Where the installed ``hotline-sla`` distribution put its modules (an editable install points here)."""
    dist = importlib.metadata.distribution("hotline-sla")
    return {Path(str(dist.locate_file(f))).resolve() for f in dist.files or ()}


@pytest.mark.parametrize("name", ["daemon", "notifiers"])
def test_our_packages_are_the_ones_imported(name: str) -> None:
    module = importlib.import_module(name)
    where = Path(module.__file__ or "").resolve()
    ours = where.is_relative_to(ROOT / name) or where in dist_files()
    assert ours, (
        f"import {name!r} resolved to {where}, which is not this checkout ({ROOT / name}) nor the installed "
        f"hotline-sla distribution: a foreign {name!r} package shadows ours. Install hotline-sla into its own "
        f"venv (README, 'Running as a service')."
    )


def test_the_console_entry_point_is_our_cli() -> None:
    from daemon import cli

    [entry] = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "hotline-sla"]
    assert entry.value == "daemon.cli:main"
    assert entry.load() is cli.main
    assert callable(cli.main) and callable(cli.build_parser)  # the parser the CLI contract is built on
