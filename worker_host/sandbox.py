"""The workflow sandbox of the worker host.

Temporal's sandbox re-imports (and recompiles) a workflow's module for every workflow run, which was
a measurable part of the path from submission to training start. The project's own ``workflows``
package is deterministic by construction (it defines classes and constants only, holds no module
state, does no I/O at import) and is passed through: imported once, shared by every run. The
sandbox's runtime restrictions (clock, randomness, I/O, threads) still apply to the code of every
run, passed through or not, and the recorded histories replay under the default sandbox in the tests.
"""

from __future__ import annotations

from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

WORKFLOW_PACKAGES = ("workflows",)


def workflow_runner() -> SandboxedWorkflowRunner:
    return SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(*WORKFLOW_PACKAGES))
