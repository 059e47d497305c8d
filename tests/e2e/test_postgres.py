"""The database-facing paths on PostgreSQL: the same e2e scenarios as on SQLite, with the API, the
worker host and the agents sharing a real PostgreSQL server
(``SIMPLETUNER_DATABASE_URL=postgresql+psycopg://…``): the core job path, 200 concurrent submissions
under limits (``SELECT … FOR UPDATE`` admission), approvals by REST and e-mail, continue-as-new and
the reconciler."""

from __future__ import annotations

import pytest

from tests.e2e import test_admission, test_approvals, test_job_lifecycle, test_long_waits, test_reconciler
from tests.e2e.test_approvals import mail, mailbox  # noqa: F401  (fixtures)

pytestmark = pytest.mark.e2e


@pytest.fixture
def pg_env(postgres) -> dict[str, str]:
    return {"SIMPLETUNER_DATABASE_URL": postgres.create_database()}


@pytest.fixture
def pg_stack(stack_factory, pg_env):
    return stack_factory(extra_env=pg_env)


@pytest.fixture
def pg_stack_factory(stack_factory, pg_env):
    def make(**kwargs):
        kwargs["extra_env"] = {**kwargs.get("extra_env", {}), **pg_env}
        return stack_factory(**kwargs)
    return make


def test_core_job_path_on_postgresql(pg_stack):
    test_job_lifecycle.test_job_completes_with_outputs_logs_progress_and_idempotent_replay(pg_stack)


@pytest.mark.slow
def test_two_hundred_submissions_on_postgresql(pg_stack):
    test_admission.test_two_hundred_submissions_from_twenty_users(pg_stack)


def test_rest_and_email_decisions_on_postgresql(pg_stack_factory, mailbox):  # noqa: F811
    test_approvals.test_rest_and_email_decisions(pg_stack_factory, mailbox)


@pytest.mark.slow
def test_long_approval_waits_on_postgresql(pg_stack_factory, mailbox):  # noqa: F811
    test_long_waits.test_approval_waits_span_runs_then_rest_and_email_decide(pg_stack_factory, mailbox)


@pytest.mark.slow
def test_reconciler_on_postgresql(pg_stack):
    test_reconciler.test_terminated_workflows_are_finished_and_their_slots_freed(pg_stack)
