"""`simpletuner approvals list|approve|reject`: jobs waiting for a lead's approval, over the REST API.

Approving or rejecting needs ``admin.approve`` and the rule's approver level, never for one's own job;
the API's refusal (403, or 409 once decided) is printed with exit code 4.
"""

from __future__ import annotations

import argparse
import sys

from cli.api_client import EXIT_CODES_HELP, EXIT_OK, ApiClient, command, connection_options, fetch_pages
from cli.job_view import emit, print_page, table, when

PATH = "/api/approvals/requests"


def request_rows(requests: list[dict]) -> str:
    return table(["REQUEST", "JOB", "STATUS", "USER", "CONFIG", "RULE", "CREATED", "EXPIRES", "DECIDED BY"],
                 [[r["id"], r["job_id"], r["status"], r.get("username"), r.get("config_name"), r.get("rule_name"),
                   when(r.get("created_at")), when(r.get("expires_at")) if r["status"] == "pending" else None,
                   r.get("decided_by")] for r in requests])


@command
def list_requests(api: ApiClient, args: argparse.Namespace) -> int:
    params = {"status": "pending" if args.pending else args.status, "job_id": args.job, "user": args.user,
              "limit": args.limit, "cursor": args.cursor}
    page = fetch_pages(api, PATH, "requests", params, args.all)
    if args.json:
        emit(page)
    else:
        print_page(page, "requests", request_rows(page["requests"]), "approval requests",
                   "simpletuner approvals list")
    return EXIT_OK


def _request_id(api: ApiClient, ref: str) -> str:
    """A request id as given, or the request of a job id."""
    return api.get(f"{PATH}/job/{ref}")["id"] if ref.startswith("job-") else ref


def _decide(decision: str):
    past = {"approve": "approved", "reject": "rejected"}[decision]

    @command
    def run(api: ApiClient, args: argparse.Namespace) -> int:
        request_id = _request_id(api, args.request)
        body = {"comment": args.comment} if args.comment is not None else None
        answer = api.post(f"{PATH}/{request_id}/{decision}", body)
        if args.json:
            emit(answer)
        else:
            print(f"{past} {answer['id']} (job {answer['job_id']} of {answer.get('username')}, "
                  f"config {answer.get('config_name')})")
            if answer.get("status") != past:  # not expected: the API answers the request as decided
                print(f"note: the request is now {answer.get('status')}", file=sys.stderr)
        return EXIT_OK
    return run


def add_parser(sub: argparse._SubParsersAction) -> None:
    common = connection_options()
    fmt = argparse.RawDescriptionHelpFormatter
    approvals = sub.add_parser("approvals", help="list, approve and reject jobs waiting for approval",
                               description="Approval requests of jobs an approval rule holds (status "
                                           "pending_approval).", epilog=EXIT_CODES_HELP, formatter_class=fmt)
    commands = approvals.add_subparsers(dest="approvals_command", required=True, metavar="COMMAND")

    p = commands.add_parser("list", parents=[common], help="list approval requests, newest first",
                            description="Approvers see every request; everyone else the requests of their jobs.",
                            epilog=EXIT_CODES_HELP, formatter_class=fmt)
    which = p.add_mutually_exclusive_group()
    which.add_argument("--status", choices=("pending", "approved", "rejected", "expired", "cancelled"))
    which.add_argument("--pending", action="store_true", help="only pending requests (--status pending)")
    p.add_argument("--job", help="the request of this job id")
    p.add_argument("--user", help="submitter's username or id")
    p.add_argument("--limit", type=int, help="rows per page (API default 100, at most 1000)")
    p.add_argument("--cursor", help="next page: the cursor printed with the previous one")
    p.add_argument("--all", action="store_true", help="every page")
    p.set_defaults(func=list_requests)

    for decision, what in (("approve", "approve a request: the job starts at once"),
                           ("reject", "reject a request: the job is cancelled with the comment")):
        p = commands.add_parser(decision, parents=[common], help=what, description=what, epilog=EXIT_CODES_HELP,
                                formatter_class=fmt)
        p.add_argument("request", metavar="REQUEST_OR_JOB_ID", help="an approval request id (apr_...) or a job id")
        p.add_argument("--comment", "-m", help="recorded with the decision (shown to the submitter)")
        p.set_defaults(func=_decide(decision))
