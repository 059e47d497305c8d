"""The multiprocess metrics directory: the first API process of a run wipes what the previous run left
(prometheus-client's files only), a process joining a directory that live processes use wipes
nothing, and a killed process's lock is gone with it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from activities.observability import metrics_dir
from activities.settings import ConfigFileError

HOLD = ("import fcntl, os, sys\n"
        "fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)\n"
        "fcntl.flock(fd, fcntl.LOCK_SH)\n"
        "print('holding', flush=True)\n"
        "sys.stdin.read()\n")  # until the test closes stdin or kills it


def _leftovers(directory) -> None:
    for name in ("counter_101.db", "histogram_101.db", "gauge_livesum_101.db", "notes.txt", "counter_x.db"):
        (directory / name).write_bytes(b"old")


def test_the_first_process_wipes_only_prometheus_files(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    _leftovers(directory)
    fd = metrics_dir.prepare(str(directory))
    try:
        assert sorted(p.name for p in directory.iterdir()) == [".lock", "counter_x.db", "notes.txt"]
    finally:
        os.close(fd)


def test_a_process_joining_live_ones_wipes_nothing_until_they_are_gone(tmp_path):
    directory = tmp_path / "metrics"
    directory.mkdir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(directory / metrics_dir.LOCK_NAME)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "holding"
        _leftovers(directory)
        fd = metrics_dir.prepare(str(directory))
        os.close(fd)
        assert (directory / "counter_101.db").exists()  # a live process of this run may be writing it
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=10)
    fd = metrics_dir.prepare(str(directory))  # killed: its lock went with it
    os.close(fd)
    assert not (directory / "counter_101.db").exists()


def test_the_directory_is_made_and_a_bad_one_named(tmp_path):
    fd = metrics_dir.prepare_from_env({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "new" / "dir")})
    assert fd is not None and (tmp_path / "new" / "dir" / ".lock").exists()
    os.close(fd)
    assert metrics_dir.prepare_from_env({}) is None
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigFileError, match=r"PROMETHEUS_MULTIPROC_DIR=.*file/sub: cannot use it"):
        metrics_dir.prepare(str(tmp_path / "file" / "sub"))


def test_the_server_command_prepares_it_before_prometheus_client_is_imported():
    """prometheus-client opens its files when imported: the directory must be wiped before that."""
    probe = ("import sys, cli.main\n"
             "from activities.observability import metrics_dir\n"
             "print('prometheus_client' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60,
                          cwd=str(Path(__file__).resolve().parents[2]))
    assert done.stdout.strip() == "False", done.stdout + done.stderr
