"""Approvals end to end: real API, worker host, agent, Temporal, Dovecot (IMAP IDLE) and an SMTP receiver.

A $100 job under a "cost_exceeds 50" rule waits for approval; a lead approves one over REST, an
e-mailed "LGTM" approves another, an e-mailed rejection cancels a third, a fourth expires on its
timer. Replayed replies, strangers, late replies, self-approval and researchers change nothing.
"""

from __future__ import annotations

import re
from email.message import EmailMessage
from email.utils import make_msgid

import pytest
import yaml

from tests.e2e.test_users_and_auth import bearer_for, make_user
from tests.servers.mail_server import DovecotServer, SmtpSink

pytestmark = pytest.mark.e2e

BOT = "bot@corp.test"
MAIL_USERS = {BOT: "bot-pw"}


@pytest.fixture(scope="module")
def mail():
    dovecot = DovecotServer(MAIL_USERS).start()
    sink = SmtpSink(deliver_to=dovecot).start()
    try:
        yield dovecot, sink
    finally:
        sink.stop()
        dovecot.stop()


@pytest.fixture
def mailbox(mail):
    dovecot, sink = mail
    dovecot.expunge_all(BOT)
    sink.clear()
    return dovecot, sink


def build_stack(stack_factory, dovecot, sink, temporal_server=None, **env):
    stack = stack_factory(start=False, temporal_server=temporal_server, extra_env={k: str(v) for k, v in env.items()})
    stack.enterprise_config.write_text(yaml.safe_dump({
        "cost": {"hourly_rates_usd": {"test-gpu*": 100.0}},
        "notifications": {"email": {
            "smtp_host": "127.0.0.1", "smtp_port": sink.port, "from_address": BOT,
            "imap_host": "127.0.0.1", "imap_port": dovecot.port, "imap_username": BOT,
            "imap_password": MAIL_USERS[BOT]}},
    }))
    stack.start()
    worker_id, token = stack.create_worker("agent-1", {"pool": "main"})
    stack.start_agent(token, name="agent-1", extra_args=["--hardware-type", "test-gpu"])  # the configs' hardware
    body = stack.tiny_config()
    body.update(hardware_type="test-gpu", estimated_hours=1.0)  # 1 GPU-hour at $100
    stack.expect(stack.client.put("/api/configs/big", json=body), 200, 201)
    stack.expect(stack.client.post("/api/approvals/rules", json={
        "name": "high_cost", "condition": "cost_exceeds", "threshold": "50", "required_approver_level": "lead",
        "exempt_levels": ["admin"]}), 201)
    make_user(stack, "rae", "researcher")
    make_user(stack, "lena", "lead")
    make_user(stack, "leo", "lead")
    make_user(stack, "rob", "researcher")
    return stack


def submit_pending(stack, who) -> tuple[str, dict]:
    answer = stack.expect(who.post("/api/queue/submit", json={"config_name": "big", "target": "worker",
                                                               "worker_labels": {"pool": "main"}}), 201)
    job = stack.wait_job(answer["job_id"], "pending_approval", timeout=30)
    req = stack.expect(stack.client.get(f"/api/approvals/requests/job/{job['job_id']}"), 200)
    return job["job_id"], req


def approval_mail(sink, job_id: str, to: str):
    def match(item):
        _, rcpts, msg = item
        return to in rcpts and job_id in (msg["Subject"] or "") and "[ref:" in msg["Subject"]
    return sink.wait_for(match, timeout=30)[2]


def reply(dovecot, original, sender: str, text: str, message_id: str | None = None) -> str:
    msg = EmailMessage()
    msg["From"], msg["To"] = sender, BOT
    msg["Subject"] = "Re: " + re.sub(r"\r?\n[ \t]", " ", original["Subject"])
    message_id = message_id or make_msgid(domain="corp.test")
    msg["Message-ID"], msg["In-Reply-To"] = message_id, original["Message-ID"]
    quoted = "\n".join("> " + line for line in body_of(original).splitlines())
    msg.set_content(f"{text}\n\nOn Mon, someone wrote:\n{quoted}\n")
    dovecot.deliver(BOT, msg.as_bytes(), sender)
    return message_id


def body_of(msg) -> str:
    part = next(p for p in msg.walk() if p.get_content_type() == "text/plain")
    return part.get_payload(decode=True).decode(part.get_content_charset() or "utf-8")


def inbound(stack, message_id: str):
    found = stack.sql("SELECT status, detail FROM inboundemail WHERE message_id = :m", m=message_id.strip("<>"))
    return (found[0]["status"], found[0]["detail"]) if found else None


def events(stack, job_id: str) -> list[str]:
    return [r["event_type"] for r in stack.sql("SELECT event_type FROM jobevent WHERE job_id = :j ORDER BY id", j=job_id)]


def test_rest_and_email_decisions(stack_factory, mailbox):
    dovecot, sink = mailbox
    stack = build_stack(stack_factory, dovecot, sink)
    rae, lena, rob = bearer_for(stack, "rae"), bearer_for(stack, "lena"), bearer_for(stack, "rob")

    # 1. REST approval by a lead; a researcher and the submitter are refused first
    job1, req1 = submit_pending(stack, rae)
    assert req1["status"] == "pending" and "exceeds" in req1["reason"] and req1["cost_estimate_usd"] == 100.0
    assert stack.job(job1)["queue_reason"].startswith("waiting for approval")
    assert rob.post(f"/api/approvals/requests/{req1['id']}/approve").status_code == 403
    make_user(stack, "lara", "lead")
    lara = bearer_for(stack, "lara")
    own = submit_pending(stack, lara)
    refused = lara.post(f"/api/approvals/requests/{own[1]['id']}/approve")
    assert refused.status_code == 403 and "own job" in refused.json()["detail"], refused.text
    assert stack.expect(stack.client.get("/api/approvals/requests/pending/count"), 200)["count"] == 2
    approved = stack.expect(lena.post(f"/api/approvals/requests/{req1['id']}/approve", json={"comment": "fine"}), 200)
    assert (approved["status"], approved["decided_by"], approved["channel"]) == ("approved", "lena", "rest")
    again = lena.post(f"/api/approvals/requests/{req1['id']}/reject")
    assert again.status_code == 409 and "approved" in again.json()["detail"], again.text
    stack.wait_job(job1, "completed", timeout=90)
    assert "approval.required" in events(stack, job1) and "approval.granted" in events(stack, job1)
    # every eligible lead was mailed; the submitter and researchers were not
    msg = approval_mail(sink, job1, "leo@corp.test")
    assert not [m for _, rcpts, m in sink.messages if job1 in (m["Subject"] or "") and "[ref:" in m["Subject"]
                and ("rae@corp.test" in rcpts or "rob@corp.test" in rcpts)]

    # 2. "LGTM" by e-mail approves and the job runs
    job2, req2 = submit_pending(stack, rae)
    mail2 = approval_mail(sink, job2, "leo@corp.test")
    mid = reply(dovecot, mail2, "leo@corp.test", "LGTM!")
    stack.wait_job(job2, "completed", timeout=90)
    decided = stack.expect(stack.client.get(f"/api/approvals/requests/{req2['id']}"), 200)
    assert (decided["status"], decided["decided_by"], decided["channel"]) == ("approved", "leo", "email")
    assert inbound(stack, mid)[0] == "applied"
    # replaying the same message, or the same reference in a new message, changes nothing
    mid_b = reply(dovecot, mail2, "leo@corp.test", "reject", message_id=mid)
    mid_c = reply(dovecot, mail2, "leo@corp.test", "reject")
    stack.wait_for(lambda: inbound(stack, mid_c), 30, "the second reply to be read")
    assert inbound(stack, mid_c)[0] == "refused" and "already used" in inbound(stack, mid_c)[1]
    assert inbound(stack, mid_b)[0] == "applied"  # the replayed Message-ID kept its first outcome
    assert stack.job(job2)["status"] == "completed"

    # 3. rejection by e-mail; a stranger's reply and an ambiguous one change nothing before it
    job3, req3 = submit_pending(stack, rae)
    mail3 = approval_mail(sink, job3, "lena@corp.test")
    stranger = reply(dovecot, mail3, "mallory@evil.test", "approve")
    unclear = reply(dovecot, mail3, "lena@corp.test", "ok but not now, ask me tomorrow")
    stack.wait_for(lambda: inbound(stack, unclear), 30, "the ambiguous reply to be read")
    assert inbound(stack, stranger)[0] == "refused"
    assert inbound(stack, unclear)[0] == "ignored"
    sink.wait_for(lambda item: "lena@corp.test" in item[1] and job3 in (item[2]["Subject"] or "")
                  and (item[2]["Subject"] or "").startswith("Re:"), timeout=30)  # she was told how to answer
    assert stack.job(job3)["status"] == "pending_approval"
    reply(dovecot, mail3, "lena@corp.test", "Rejected - too expensive for now")
    job = stack.wait_job(job3, "cancelled", timeout=30)
    assert "rejected by lena" in job["error"], job
    assert stack.expect(stack.client.get(f"/api/approvals/requests/{req3['id']}"), 200)["status"] == "rejected"
    assert "approval.rejected" in events(stack, job3)


def test_expiry_cancels_and_late_replies_are_refused(stack_factory, mailbox):
    dovecot, sink = mailbox
    stack = build_stack(stack_factory, dovecot, sink, SIMPLETUNER_APPROVAL_TIMEOUT_HOURS=0.002)  # 7.2 s
    rae, lena = bearer_for(stack, "rae"), bearer_for(stack, "lena")
    job4, req4 = submit_pending(stack, rae)
    mail4 = approval_mail(sink, job4, "lena@corp.test")
    job = stack.wait_job(job4, "cancelled", timeout=60)
    assert "expired" in job["error"], job
    assert stack.expect(stack.client.get(f"/api/approvals/requests/{req4['id']}"), 200)["status"] == "expired"
    assert "approval.expired" in events(stack, job4)
    sink.wait_for(lambda item: "rae@corp.test" in item[1] and "expired" in (item[2]["Subject"] or ""), timeout=30)
    late = lena.post(f"/api/approvals/requests/{req4['id']}/approve")
    assert late.status_code == 409 and "expired" in late.json()["detail"], late.text
    mid = reply(dovecot, mail4, "lena@corp.test", "approve")
    stack.wait_for(lambda: inbound(stack, mid), 30, "the late reply to be read")
    assert inbound(stack, mid)[0] == "refused"
    assert stack.job(job4)["status"] == "cancelled"


@pytest.mark.slow  # a long scenario: make slow (CI runs it after make test)
def test_restarts_during_the_wait(stack_factory, mailbox):
    dovecot, sink = mailbox
    stack = build_stack(stack_factory, dovecot, sink)
    rae, lena = bearer_for(stack, "rae"), bearer_for(stack, "lena")
    job_rest, req_rest = submit_pending(stack, rae)
    job_mail, _ = submit_pending(stack, rae)
    mail = approval_mail(sink, job_mail, "leo@corp.test")
    for proc in (stack.worker_host, stack.api):
        proc.kill()
        proc.wait_exit(10)
    reply(dovecot, mail, "leo@corp.test", "approved")  # arrives while nobody watches the mailbox
    stack.start_api()
    stack.start_worker_host()
    assert stack.job(job_rest)["status"] == "pending_approval"
    stack.expect(lena.post(f"/api/approvals/requests/{req_rest['id']}/approve"), 200)
    for job_id in (job_rest, job_mail):
        job = stack.wait_job(job_id, "completed", timeout=90)
        assert job["attempt"] == 1, job
        assert events(stack, job_id).count("job.started") == 1


def test_waits_survive_a_temporal_restart(own_temporal, stack_factory, mailbox):
    dovecot, sink = mailbox
    stack = build_stack(stack_factory, dovecot, sink, temporal_server=own_temporal)
    rae, lena = bearer_for(stack, "rae"), bearer_for(stack, "lena")
    job_rest, req_rest = submit_pending(stack, rae)
    job_mail, _ = submit_pending(stack, rae)
    mail = approval_mail(sink, job_mail, "leo@corp.test")
    own_temporal.stop()
    own_temporal.restart()
    stack.wait_for(lambda: lena.post(f"/api/approvals/requests/{req_rest['id']}/approve").status_code == 200, 60,
                   "the REST approval to go through once Temporal is back")
    reply(dovecot, mail, "leo@corp.test", "yes")
    for job_id in (job_rest, job_mail):
        job = stack.wait_job(job_id, "completed", timeout=120)
        assert job["attempt"] == 1, job
