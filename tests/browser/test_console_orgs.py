"""The console's Organizations, Teams and Quotas pages in a real Chromium against a real stack: an
admin builds an organization and a team, manages its members and quotas, and sees a job raise the
usage shown next to a limit; a researcher sees their own organization read-only."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.browser.visit import CSP, MARKUP, sign_in_with_key, sign_in_with_password
from tests.e2e.test_users_and_auth import bearer_for, make_user

pytestmark = pytest.mark.e2e
PHONE = {"width": 390, "height": 844}


def post_answer(visit, path: str):
    """Expect the answer to the form post to ``path`` (a context manager around the click)."""
    return visit.page.expect_response(lambda r: r.request.method == "POST" and r.url.endswith(path))


def submit(visit, button: str, path: str, status: int) -> None:
    with post_answer(visit, path) as answer:
        visit.page.get_by_role("button", name=button, exact=True).click()
    assert answer.value.status == status, (answer.value.status, visit.page.locator("main").inner_text())
    assert answer.value.headers["content-security-policy"] == CSP


def quota_row(visit, quota_type: str, scope: str | None = None):
    selector = f'#quotas-table tr[data-quota-type="{quota_type}"]'
    return visit.page.locator(selector + (f'[data-scope="{scope}"]' if scope else ""))


def no_sideways_scroll(visit) -> None:
    """At phone width the page itself never scrolls sideways (wide tables scroll in their box)."""
    width = visit.page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{visit.page.url} is {width}px wide at phone width"


def rest_quotas(stack, path: str) -> list[dict]:
    return stack.expect(stack.client.get(path), 200)["quotas"]


def test_admin_builds_an_org_and_a_team_and_sees_quota_usage(stack, tab):
    rory = make_user(stack, "rory", "researcher")
    make_user(stack, "sam", "researcher")
    visit = tab()
    sign_in_with_key(visit, stack.admin_token)
    visit.page.get_by_role("link", name="Administration").click()
    visit.page.wait_for_url("**/admin")
    visit.page.get_by_role("link", name="Organizations and teams").click()
    visit.page.wait_for_url("**/admin/orgs")
    expect(visit.page.locator("#orgs-table")).to_contain_text("No organization yet.")
    visit.shot("orgs-empty")

    # an organization: a bad slug is refused (422) with the form kept, then it is created
    name = f"Vision {MARKUP}"
    visit.page.get_by_label("Name", exact=True).fill(name)
    visit.page.get_by_label("Short name (slug)").fill("Bad Slug")
    submit(visit, "Create organization", "/admin/orgs", 422)
    expect(visit.page.locator("#form-errors")).to_contain_text("invalid slug")
    expect(visit.page.get_by_label("Name", exact=True)).to_have_value(name)
    visit.shot("org-refused")
    visit.page.get_by_label("Short name (slug)").fill("vision")
    visit.page.get_by_role("button", name="Create organization").click()
    visit.page.wait_for_url("**/admin/orgs/org_*")
    expect(visit.page.get_by_role("status")).to_have_text("Organization created.")
    expect(visit.page.locator("#org-name")).to_have_text(name)  # markup as text
    org_id = visit.page.locator("#org").get_attribute("data-org-id")
    assert stack.expect(stack.client.get("/api/orgs/vision"), 200)["name"] == name

    # the same slug again: 409
    visit.goto("/admin/orgs", "orgs-one")
    expect(visit.page.locator(f'tr[data-org-id="{org_id}"] a')).to_have_text(name)
    visit.page.get_by_label("Name", exact=True).fill("Vision again")
    visit.page.get_by_label("Short name (slug)").fill("vision")
    submit(visit, "Create organization", "/admin/orgs", 409)
    expect(visit.page.locator("#form-errors")).to_contain_text("already exists")

    # a team, from the organization's page (a taken slug is 409 there too)
    visit.page.locator(f'tr[data-org-id="{org_id}"] a').click()
    visit.page.get_by_label("Name", exact=True).fill("Diffusion")
    visit.page.get_by_label("Short name (slug)").fill("diffusion")
    visit.page.get_by_role("button", name="Create team").click()
    visit.page.wait_for_url("**/teams/team_*")
    expect(visit.page.get_by_role("status")).to_have_text("Team created.")
    team_id = visit.page.locator("#team").get_attribute("data-team-id")
    team_url = f"/admin/orgs/{org_id}/teams/{team_id}"
    visit.goto(f"/admin/orgs/{org_id}", "org-one-team")
    visit.page.get_by_label("Name", exact=True).fill("Diffusion two")
    visit.page.get_by_label("Short name (slug)").fill("diffusion")
    submit(visit, "Create team", "/teams", 409)
    expect(visit.page.locator("#form-errors")).to_contain_text("already has a team")
    expect(visit.page.get_by_label("Name", exact=True)).to_have_value("Diffusion two")

    # members: add by username (picked or typed), refusals, change a role, remove
    visit.page.locator("#teams-table").get_by_role("link", name="Diffusion").click()
    visit.page.wait_for_url(f"**{team_url}")
    expect(visit.page.locator("#user-picker option")).to_have_count(3)  # admin, rory, sam
    visit.page.get_by_label("Username").fill("rory")
    visit.page.get_by_role("button", name="Add member").click()
    expect(visit.page.get_by_role("status")).to_have_text("Member added.")
    expect(visit.page.locator('tr[data-username="rory"] .role')).to_have_text("member")
    visit.page.get_by_label("Username").fill("sam")
    visit.page.get_by_label("Role", exact=True).select_option("lead")
    visit.page.get_by_role("button", name="Add member").click()
    expect(visit.page.locator('tr[data-username="sam"] .role')).to_have_text("lead")
    visit.page.get_by_label("Username").fill("nobody")
    submit(visit, "Add member", "/members", 404)
    expect(visit.page.locator("#form-errors")).to_contain_text("user 'nobody' not found")
    expect(visit.page.get_by_label("Username")).to_have_value("nobody")
    visit.page.get_by_label("Username").fill("rory")
    submit(visit, "Add member", "/members", 409)
    expect(visit.page.locator("#form-errors")).to_contain_text("already a member")
    sam = visit.page.locator('tr[data-username="sam"]')
    sam.get_by_label("Role of sam", exact=True).select_option("admin")
    sam.get_by_role("button", name="Change the role of sam").click()
    expect(visit.page.get_by_role("status")).to_have_text("Role changed.")
    expect(sam.locator(".role")).to_have_text("admin")
    sam.get_by_role("button", name="Remove sam from the team").click()
    expect(visit.page.get_by_role("status")).to_have_text("Member removed.")
    expect(sam).to_have_count(0)
    members = stack.expect(stack.client.get("/api/orgs/vision/teams/diffusion/members"), 200)["members"]
    assert [(m["username"], m["role"]) for m in members] == [("rory", "member")]
    assert [r["actor"] for r in stack.sql("SELECT actor FROM auditentry WHERE action = 'team.member_added'")] \
        == ["admin", "admin"]

    # a team concurrent_jobs quota: refused values, then 0 of 2 in use
    visit.page.get_by_label("Quota", exact=True).select_option("concurrent_jobs")
    visit.page.get_by_label("Limit", exact=True).fill("1.5")
    submit(visit, "Set quota", "/quotas", 422)
    expect(visit.page.locator("#form-errors")).to_contain_text("whole number")
    expect(visit.page.get_by_label("Limit", exact=True)).to_have_value("1.5")
    visit.page.get_by_label("Limit", exact=True).evaluate("input => input.removeAttribute('min')")  # what the server says
    visit.page.get_by_label("Limit", exact=True).fill("-1")
    submit(visit, "Set quota", "/quotas", 422)
    expect(visit.page.locator("#form-errors")).to_contain_text("greater than or equal to 0")
    visit.shot("team-quota-refused")
    visit.page.get_by_label("Limit", exact=True).fill("2")
    visit.page.get_by_role("button", name="Set quota").click()
    expect(visit.page.get_by_role("status")).to_have_text("Quota saved.")
    row = quota_row(visit, "concurrent_jobs")
    expect(row.locator(".usage")).to_contain_text("0 / 2 jobs")
    assert [(q["quota_type"], q["limit"]) for q in rest_quotas(stack, "/api/orgs/vision/teams/diffusion/quotas")] \
        == [("concurrent_jobs", 2)]

    # an organization ceiling of 5: a team limit of 7 is refused (400), as by REST
    visit.goto(f"/admin/orgs/{org_id}", "org-quota")
    visit.page.get_by_label("Quota", exact=True).select_option("concurrent_jobs")
    visit.page.get_by_label("Limit", exact=True).fill("5")
    visit.page.get_by_role("button", name="Set quota").click()
    expect(quota_row(visit, "concurrent_jobs").locator(".usage")).to_contain_text("0 / 5 jobs")
    visit.goto(team_url, "team-ceiling")
    expect(visit.page.locator("main")).to_contain_text("concurrent_jobs ≤ 5")
    row.get_by_label("New limit", exact=True).fill("7")
    submit(visit, "Save the concurrent_jobs quota", "/quotas", 400)
    expect(visit.page.locator("#form-errors")).to_contain_text("exceeds the ceiling")
    expect(row.get_by_label("New limit", exact=True)).to_have_value("7")

    # a job of the team's member holds a slot: the usage shown rises, as REST counts it
    stack.put_config("orgs-q", steps=1)
    member = bearer_for(stack, "rory")
    stack.expect(member.post("/api/queue/submit", json={"config_name": "orgs-q", "target": "worker",
                                                         "worker_labels": {"pool": "none"}}), 201)

    def concurrent() -> dict | None:
        limits = stack.expect(member.get("/api/quotas/me"), 200)["limits"]
        return next((x for x in limits if x["quota_type"] == "concurrent_jobs" and x["usage"] == 1), None)
    mine = stack.wait_for(concurrent, 30, "rory's job to hold a slot")
    assert (mine["source"], mine["limit"]) == ("team diffusion", 2)
    visit.goto(team_url, "team-usage")
    expect(row.locator(".usage")).to_contain_text("1 / 2 jobs")
    expect(row.locator("meter")).to_have_attribute("value", "1")
    visit.goto(f"/admin/orgs/{org_id}", "org-usage")
    expect(quota_row(visit, "concurrent_jobs").locator(".usage")).to_contain_text("1 / 5 jobs")

    # every quota, with usage and the REST type list; user quotas set, edited, deleted there
    visit.page.get_by_role("link", name="Administration").click()
    visit.page.get_by_role("link", name="Quotas").click()
    visit.page.wait_for_url("**/admin/quotas")
    types = stack.expect(stack.client.get("/api/quotas/types"), 200)
    expect(visit.page.locator("#quota-types-table tbody tr")).to_have_count(len(types["types"]))
    for t in types["types"]:
        expect(visit.page.locator(f'#quota-types-table tr[data-quota-type="{t["quota_type"]}"]')).to_contain_text(
            t["description"])
    expect(quota_row(visit, "concurrent_jobs", "team").locator(".usage")).to_contain_text("1 / 2 jobs")
    expect(quota_row(visit, "concurrent_jobs", "team")).to_contain_text("diffusion")
    expect(quota_row(visit, "concurrent_jobs", "org").locator(".usage")).to_contain_text("1 / 5 jobs")
    visit.page.get_by_label("Username (for a user quota)").fill("rory")
    visit.page.locator("#scoped-type").select_option("daily_jobs")
    visit.page.locator("#scoped-limit").fill("10")
    visit.page.locator("#scoped-form").get_by_role("button", name="Set quota").click()
    expect(visit.page.get_by_role("status")).to_have_text("Quota saved.")
    daily = next(x for x in stack.expect(stack.client.get(f"/api/quotas/user/{rory['id']}"), 200)["limits"]
                 if x["quota_type"] == "daily_jobs")
    user_row = quota_row(visit, "daily_jobs", "user")
    expect(user_row.locator(".usage")).to_contain_text(f"{daily['usage']} / 10 jobs")
    user_row.get_by_label("New limit", exact=True).fill("20")
    user_row.get_by_role("button", name="Save the daily_jobs quota").click()
    expect(user_row.locator(".usage")).to_contain_text(" / 20 jobs")
    assert [q["limit"] for q in rest_quotas(stack, "/api/quotas?scope=user")] == [20]
    visit.page.get_by_label("every user of a level").check()
    visit.page.get_by_label("Level (for a level quota)").select_option("researcher")
    visit.page.locator("#scoped-limit").evaluate("input => { input.type = 'text'; input.value = '-3'; }")
    submit(visit, "Set quota", "/admin/quotas", 422)
    expect(visit.page.locator("#form-errors")).to_contain_text("greater than or equal to 0")
    visit.shot("quotas-refused")
    user_row.get_by_role("button", name="Delete the daily_jobs quota").click()
    expect(visit.page.get_by_role("status")).to_have_text("Quota deleted.")
    expect(user_row).to_have_count(0)
    assert rest_quotas(stack, "/api/quotas?scope=user") == []

    # the queue's global limits, with the slots in use
    visit.page.get_by_label("Jobs at once", exact=True).fill("4")
    visit.page.get_by_role("button", name="Save global limits").click()
    expect(visit.page.get_by_role("status")).to_have_text("Queue limits saved.")
    expect(visit.page.locator("#global-max")).to_have_text("1 / 4")
    assert stack.expect(stack.client.get("/api/queue/concurrency"), 200)["max_concurrent"] == 4
    visit.shot("quotas-overview")

    phone = tab(**PHONE)
    sign_in_with_key(phone, stack.admin_token)
    for path, shot, control in ((team_url, "team-phone", "Add member"), (f"/admin/orgs/{org_id}", "org-phone", "Create team"),
                                ("/admin/orgs", "orgs-phone", "Create organization"),
                                ("/admin/quotas", "quotas-phone", "Save global limits")):
        assert phone.goto(path, shot).status == 200
        expect(phone.page.get_by_role("button", name=control)).to_be_visible()
        no_sideways_scroll(phone)
    assert visit.page.locator("main img").count() == 0
    assert not visit.dialogs and not phone.dialogs


def test_a_researcher_sees_their_organization_read_only(stack, tab):
    stack.expect(stack.client.post("/api/orgs", json={"name": MARKUP, "slug": "lab"}), 201)
    stack.expect(stack.client.post("/api/orgs", json={"name": "Other", "slug": "other"}), 201)
    team = stack.expect(stack.client.post("/api/orgs/lab/teams", json={"name": "Bench", "slug": "bench"}), 201)
    make_user(stack, "rhea", "researcher")
    stack.expect(stack.client.post("/api/orgs/lab/teams/bench/members", json={"username": "rhea"}), 201)
    stack.expect(stack.client.post("/api/orgs/lab/teams/bench/quotas",
                                   json={"quota_type": "concurrent_jobs", "limit": 3}), 201)

    visit = tab()
    sign_in_with_password(visit, "rhea")
    visit.page.get_by_role("link", name="Administration").click()
    sections = visit.page.locator("#admin-sections")
    expect(sections.get_by_role("link", name="Organizations and teams")).to_be_visible()  # org.view
    expect(sections.get_by_role("link", name="Quotas", exact=True)).to_have_count(0)  # admin.config
    visit.page.get_by_role("link", name="Organizations and teams").click()
    rows = visit.page.locator("#orgs-table tbody tr")
    expect(rows).to_have_count(1)  # only the one she belongs to
    expect(rows.locator("a")).to_have_text(MARKUP)
    expect(visit.page.locator("#org-form")).to_have_count(0)
    rows.locator("a").click()
    expect(visit.page.locator("#org-name")).to_have_text(MARKUP)
    expect(visit.page.locator("#team-form")).to_have_count(0)
    expect(visit.page.locator("#quota-form")).to_have_count(0)
    visit.page.get_by_role("link", name="Bench").click()
    visit.page.wait_for_url(f"**/teams/{team['id']}")
    visit.shot("team-researcher")
    expect(visit.page.locator('tr[data-username="rhea"] .role')).to_have_text("member")
    expect(quota_row(visit, "concurrent_jobs").locator(".usage")).to_contain_text("0 / 3 jobs")
    expect(visit.page.locator("#member-form")).to_have_count(0)
    expect(visit.page.get_by_role("button", name="Change the role of rhea")).to_have_count(0)
    expect(visit.page.get_by_role("button", name="Save the concurrent_jobs quota")).to_have_count(0)
    assert visit.page.locator("main img").count() == 0

    assert visit.goto("/admin/orgs/other", "org-not-hers").status == 404
    response = visit.goto("/admin/quotas", "quotas-forbidden")
    assert response.status == 403 and response.headers["content-security-policy"] == CSP
    expect(visit.page.locator(".message")).to_contain_text("admin.config")

    # forms posted anyway (with her own CSRF token) get the 403 page and change nothing
    csrf = visit.page.locator('input[name="csrf"]').first.input_value()
    lab = stack.expect(stack.client.get("/api/orgs/lab"), 200)["id"]
    for path, form in (("/admin/orgs", {"name": "Mine", "slug": "mine"}),
                       (f"/admin/orgs/{lab}/teams", {"name": "Mine", "slug": "mine"}),
                       (f"/admin/orgs/{lab}/teams/{team['id']}/members", {"username": "admin"}),
                       (f"/admin/orgs/{lab}/teams/{team['id']}/quotas", {"quota_type": "daily_jobs", "limit": "9"}),
                       ("/admin/quotas", {"scope": "user", "username": "rhea", "quota_type": "daily_jobs",
                                          "limit": "9"})):
        answer = visit.page.request.post(path, form={"csrf": csrf, **form})
        assert answer.status == 403, (path, answer.status)
        assert "403 · Not allowed" in answer.text()
    assert [o["slug"] for o in stack.expect(stack.client.get("/api/orgs"), 200)["orgs"]] == ["lab", "other"]
    assert [t["slug"] for t in stack.expect(stack.client.get("/api/orgs/lab/teams"), 200)["teams"]] == ["bench"]
    members = stack.expect(stack.client.get("/api/orgs/lab/teams/bench/members"), 200)["members"]
    assert [m["username"] for m in members] == ["rhea"]
    assert len(rest_quotas(stack, "/api/quotas")) == 1
    assert not visit.dialogs
