"""``promtool`` (Debian's prometheus package) as the tests use it: lint exposition text, check rules
and configuration files."""

from __future__ import annotations

import shutil
import subprocess

import pytest

PROMTOOL = "/usr/bin/promtool"
# The operations guide fixes these two names; promtool's lint would have them in seconds. They stay
# as the guide has them (their base-unit figures are the HTTP histogram and nothing else is in ms).
GUIDE_NAMES_IN_MS = ("simpletuner_http_request_latency_ms_avg", "simpletuner_health_database_latency_ms")


def promtool() -> str:
    found = shutil.which("promtool") or (PROMTOOL if shutil.which(PROMTOOL) else None)
    if found is None:
        pytest.skip("promtool is missing: run tests/servers/install.sh")
    return found


def run(*args: str, text: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([promtool(), *args], input=text, capture_output=True, text=True, timeout=60)


def metric_problems(exposition: str) -> list[str]:
    """What ``promtool check metrics`` finds wrong, but for the unit lint of the guide's two ``_ms`` names;
    a parse error is always a problem."""
    done = run("check", "metrics", text=exposition)
    lines = [line for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    if done.returncode == 0:
        return []
    if done.returncode != 3:  # 3: lint findings only; anything else: it could not read the text
        return lines or [f"promtool exited {done.returncode}"]
    return [line for line in lines if not (line.split(" ", 1)[0] in GUIDE_NAMES_IN_MS
                                            and "abbreviated units" in line)]
