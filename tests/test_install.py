"""The production install of systemd/README.md, walked in a fake root: wheel built from the checkout, venv
under opt/, ``init``, ``config check`` and ``run`` as an unprivileged user until READY=1, then SIGTERM.

The tests run as root, for whom chmod denies nothing; the service steps therefore run as ``nobody`` through
``setpriv`` (util-linux, present wherever systemd is), which is what ``User=`` does: the config dir stays
root-owned and is really read-only to the service, the state dir is handed to it as StateDirectory= would.
The new venv gets the checkout's wheel with ``--no-deps``; its dependencies come from the test venv through
a .pth file, so the test needs no package index beyond the build backend (setuptools, for ``pip wheel``).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon_proc import ROOT
from tests.notify_listener import NotifySocketListener

pytestmark = pytest.mark.slow
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]


@pytest.fixture
def fake_root() -> Iterator[Path]:
    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to run the service steps as an unprivileged user")
    root = Path(tempfile.mkdtemp(prefix="hotline-root-", dir="/tmp"))
    root.chmod(0o755)  # nobody must reach the venv and the state dir, as on a real host
    yield root
    shutil.rmtree(root, ignore_errors=True)


def run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, **kw)  # type: ignore[call-overload,no-any-return]


def test_the_install_guide_works_verbatim_with_a_read_only_config_dir(fake_root: Path) -> None:
    dist = fake_root / "dist"
    built = run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(dist), str(ROOT)])
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next(dist.glob("hotline_sla-*.whl"))

    venv = fake_root / "opt" / "hotline-sla" / "venv"
    made = run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    assert made.returncode == 0, made.stderr
    python = venv / "bin" / "python"
    installed = run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps",
                     "--no-index", str(wheel)])
    assert installed.returncode == 0, installed.stderr[-2000:]
    site = Path(run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (site / "zz-test-dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n", encoding="utf-8")
    env = {"PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "LANG": "C.UTF-8"}
    where = run([str(python), "-c", "import daemon; print(daemon.__file__)"], env=env, cwd="/")
    assert where.stdout.startswith(str(site)), where  # the wheel's code, not the checkout's

    etc, state = fake_root / "etc" / "hotline-sla", fake_root / "var" / "lib" / "hotline-sla"
    cli = str(venv / "bin" / "hotline-sla")
    init = run([cli, "init", "--config-dir", str(etc), "--state-dir", str(state)], env=env, cwd="/")
    assert init.returncode == 0, init.stderr
    assert run([cli, "init", "--config-dir", str(etc), "--state-dir", str(state)], env=env).returncode == 1
    # what the unit's StateDirectory= does: the state dir exists and belongs to the service user
    state.mkdir(parents=True, mode=0o750)
    shutil.chown(state, "nobody", "nogroup")
    service_env = {**env, "HOTLINE_SLA_CONFIG": str(etc / "config.yaml"), "STATE_DIRECTORY": str(state)}
    assert run([*NOBODY, "touch", str(etc / "probe")]).returncode != 0, "the config dir must be read-only"

    check = run([*NOBODY, cli, "config", "check"], env=service_env, cwd=str(state))
    assert check.returncode == 0, check.stdout + check.stderr
    assert "config ok" in check.stdout

    # a writable path left in the config dir is caught by `config check`, naming the setting
    bad = etc / "bad.yaml"
    bad.write_text((etc / "config.yaml").read_text(encoding="utf-8").replace(
        f"output_dir: {state}/reports", f"output_dir: {etc}/reports"), encoding="utf-8")
    refused = run([*NOBODY, cli, "--config", str(bad), "config", "check"], env=service_env, cwd=str(state))
    assert refused.returncode == 1 and "reports.output_dir" in refused.stdout, refused.stdout
    refused_run = run([*NOBODY, cli, "--config", str(bad), "run"], env=service_env, cwd=str(state))
    assert refused_run.returncode == 2 and "reports.output_dir" in refused_run.stderr
    assert "Traceback" not in refused_run.stdout + refused_run.stderr

    with NotifySocketListener.bind_abstract() as listener:
        proc = subprocess.Popen([*NOBODY, cli, "run"], env={**service_env, "NOTIFY_SOCKET": listener.address},
                                cwd=str(state), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            listener.wait_for("READY=1", 90)
            proc.send_signal(signal.SIGTERM)
            listener.wait_for("STOPPING=1", 30)
            out, _ = proc.communicate(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert proc.returncode == 0, out[-3000:]
    assert "Traceback" not in out, out[max(0, out.find("Traceback") - 600):][:4000]
    assert (state / "hotline-sla.sqlite3").is_file()
