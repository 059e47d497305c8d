"""The console's Workers page, driven in a real Chromium against a real stack: an admin creates an
agent, starts a real agent process with the token shown once, drains, relabels, rotates and deletes it."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.visit import CSP, MARKUP, sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import make_user

pytestmark = pytest.mark.e2e


def wait_shown_status(stack, visit, worker_id: str, status: str, watch=()) -> None:
    """Reload the list until the worker's row shows ``status`` (the page has no live updates)."""
    cell = visit.page.locator(f'tr[data-worker-id="{worker_id}"] .status')

    def shown() -> bool:
        visit.page.reload()
        return cell.inner_text() == status
    stack.wait_for(shown, 45, f"the workers page to show {worker_id} {status}", watch=watch, interval=0.5)


def post_answer(visit, path: str):
    """Expect the answer to the form post to ``path`` (a context manager around the click)."""
    return visit.page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(path))


def audited(stack, action: str, worker_id: str) -> list[dict]:
    return stack.sql("SELECT actor FROM auditentry WHERE action = :action AND target_id = :id",
                     action=action, id=worker_id)


def test_admin_creates_runs_drains_relabels_rotates_and_deletes_a_worker(stack, tab):
    visit = tab()
    sign_in_with_key(visit, stack.admin_token)
    visit.page.get_by_role("link", name="Workers").click()
    visit.page.wait_for_url("**/workers")
    expect(visit.page.locator("#workers-total")).to_have_text("0 workers")
    visit.shot("workers-empty")

    # create it from the form, with the keyboard: the token and the command line are shown once
    visit.page.get_by_role("link", name="New worker").click()
    visit.page.wait_for_url("**/workers/new")
    visit.page.get_by_label("Labels").fill("pool=console\nteam=nlp")
    visit.page.get_by_label("Name").fill("gpu-a")
    visit.shot("worker-new")
    with post_answer(visit, "/workers/new") as answer:
        visit.page.get_by_label("Name").press("Enter")
    assert answer.value.status == 200 and answer.value.headers["cache-control"] == "no-store"
    assert answer.value.headers["content-security-policy"] == CSP
    expect(visit.page.locator("h1")).to_have_text("Worker created: gpu-a")
    token = visit.page.locator("#worker-token").inner_text()
    assert token.startswith("wt")
    expect(visit.page.locator("#worker-command")).to_have_text(
        f"simpletuner worker --orchestrator-url {stack.api_url} --worker-token {token} --persistent")
    expect(visit.page.get_by_role("button", name="Copy the command")).to_be_visible()  # workers.js ran
    visit.shot("worker-token")

    visit.page.reload()  # posts the form again: the name is taken now, and no token is shown
    expect(visit.page.locator("#form-errors")).to_contain_text("already exists")
    assert token not in visit.page.content()
    visit.goto("/workers", "workers-one")
    assert token not in visit.page.content()
    row = visit.page.locator("#workers-table tbody tr", has_text="gpu-a")
    worker_id = row.get_attribute("data-worker-id")
    expect(row.locator(".labels")).to_have_text("pool=consoleteam=nlp")
    expect(row.locator(".status")).to_have_text("connecting")
    assert audited(stack, "worker.created", worker_id) == [{"actor": "admin"}]

    # the token works: a real agent process registers with it
    agent = stack.start_agent(token, name="gpu-a", wait=False)
    wait_shown_status(stack, visit, worker_id, "idle", watch=[agent])
    expect(row.locator("td").nth(3)).to_have_text("1")  # a CPU agent: one slot
    expect(row.locator("td").nth(4)).to_have_text("cpu")
    visit.shot("workers-idle")
    phone = tab(width=390, height=844)  # the same pages at phone width
    sign_in_with_key(phone, stack.admin_token)
    phone.goto("/workers", "workers-phone")
    expect(phone.page.get_by_role("button", name="Drain gpu-a")).to_be_visible()
    phone.goto(f"/workers/{worker_id}", "worker-page-phone")
    expect(phone.page.get_by_label("Labels")).to_be_visible()

    # drain and undrain from the list
    row.get_by_role("button", name="Drain gpu-a").click()
    visit.page.wait_for_url("**/workers")
    expect(row.locator(".status")).to_have_text("draining")
    visit.shot("workers-draining")
    assert stack.worker(worker_id)["draining"] is True
    row.get_by_role("button", name="Undrain gpu-a").click()
    expect(row.locator(".status")).to_have_text("idle")
    assert stack.worker(worker_id)["draining"] is False
    assert len(audited(stack, "worker.drained", worker_id)) == 1
    assert len(audited(stack, "worker.undrained", worker_id)) == 1

    # labels: a malformed line is refused with a message, then a valid edit is saved
    row.get_by_role("link", name="gpu-a").click()
    visit.page.wait_for_url(f"**/workers/{worker_id}")
    visit.shot("worker-page")
    visit.page.get_by_label("Labels").fill("pool=console-b\nnot a label")
    with post_answer(visit, "/labels") as answer:
        visit.page.get_by_role("button", name="Save labels").click()
    assert answer.value.status == 422
    expect(visit.page.locator("#form-errors")).to_contain_text("line 2: write key=value")
    expect(visit.page.get_by_label("Labels")).to_have_value("pool=console-b\nnot a label")
    visit.shot("worker-labels-refused")
    visit.page.get_by_label("Labels").fill("pool=console-b")
    visit.page.get_by_role("button", name="Save labels").click()
    visit.page.wait_for_url("**/workers")
    expect(row.locator(".labels")).to_have_text("pool=console-b")
    assert stack.worker(worker_id)["labels"] == {"pool": "console-b"}

    # an online worker cannot be deleted: the refusal is shown on its page
    row.get_by_role("link", name="gpu-a").click()
    visit.page.get_by_label("Yes, delete gpu-a").press("Space")
    with post_answer(visit, "/delete") as answer:
        visit.page.get_by_role("button", name="Delete worker").click()
    assert answer.value.status == 409
    expect(visit.page.locator("#form-errors")).to_contain_text("only an offline worker can be deleted")

    # rotate: the new token is shown once, the running agent (old token) stops, the new token works
    with post_answer(visit, "/token") as answer:
        visit.page.get_by_role("button", name="Rotate token").click()
    assert answer.value.headers["cache-control"] == "no-store"
    expect(visit.page.locator("h1")).to_have_text("New token: gpu-a")
    new_token = visit.page.locator("#worker-token").inner_text()
    assert new_token != token
    expect(visit.page.locator("#worker-command")).to_contain_text(f"--worker-token {new_token}")
    visit.shot("worker-rotated")
    assert len(audited(stack, "worker.token_rotated", worker_id)) == 1
    stack.wait_for(lambda: not agent.alive, 45, "the agent with the old token to stop")
    visit.goto("/workers", "workers-after-rotation")
    assert new_token not in visit.page.content()
    wait_shown_status(stack, visit, worker_id, "offline")
    agent = stack.start_agent(new_token, name="gpu-a", wait=False)
    wait_shown_status(stack, visit, worker_id, "idle", watch=[agent])

    # delete after its agent stopped: the confirmation box is required
    agent.terminate_and_wait()
    wait_shown_status(stack, visit, worker_id, "offline")
    row.get_by_role("link", name="gpu-a").click()
    visit.page.get_by_label("Yes, delete gpu-a").check()
    visit.shot("worker-delete")
    visit.page.get_by_role("button", name="Delete worker").click()
    visit.page.wait_for_url("**/workers")
    expect(visit.page.locator("#workers-total")).to_have_text("0 workers")
    expect(row).to_have_count(0)
    visit.shot("workers-deleted")
    assert all(w["id"] != worker_id for w in stack.workers())
    assert audited(stack, "worker.deleted", worker_id) == [{"actor": "admin"}]


def test_researcher_gets_the_403_page_on_workers(stack, tab):
    make_user(stack, "rex", "researcher")
    visit = tab()
    sign_in_with_password(visit, "rex")
    expect(visit.page.get_by_role("link", name="Workers")).to_have_count(0)
    for path in ("/workers", "/workers/new"):
        response = visit.goto(path, "workers-forbidden")
        assert response.status == 403 and response.headers["content-security-policy"] == CSP
        expect(visit.page.locator("h1")).to_have_text("403 · Not allowed")
        expect(visit.page.locator(".message")).to_contain_text("admin.workers")


def test_markup_in_worker_fields_renders_as_text(stack, tab):
    worker_id, _ = stack.create_worker("xss-agent", labels={"note": MARKUP})
    stack.sql_write("UPDATE worker SET name = :name, current_job_id = :job WHERE id = :id",
                    name=MARKUP, job=MARKUP, id=worker_id)
    visit = tab()
    sign_in_with_key(visit, stack.admin_token)
    visit.goto("/workers", "workers-markup")
    row = visit.page.locator(f'tr[data-worker-id="{worker_id}"]')
    name_link = row.locator("td a").first
    expect(name_link).to_have_text(MARKUP)
    expect(name_link).to_have_attribute("href", f"/workers/{worker_id}")
    expect(row.locator(".labels")).to_have_text(f"note={MARKUP}")
    job_link = row.locator('a[href^="/jobs/"]')
    expect(job_link).to_have_text(MARKUP)
    assert job_link.get_attribute("href") == "/jobs/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E"

    visit.goto(f"/workers/{worker_id}", "worker-markup")
    expect(visit.page.locator("#worker-name")).to_have_text(MARKUP)
    expect(visit.page.get_by_label("Labels")).to_have_value(f"note={MARKUP}")
    visit.page.get_by_role("button", name="Rotate token").click()
    expect(visit.page.locator("h1")).to_have_text(f"New token: {MARKUP}")
    visit.shot("worker-markup-token")
    assert visit.page.locator("main img").count() == 0
    assert visit.dialogs == [], visit.dialogs
