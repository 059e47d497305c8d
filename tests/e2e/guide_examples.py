"""The user guides' and the README's ``curl`` examples of the REST API, as data.

Each ``Example`` is one curl command as the guide writes it: the method given with ``-X`` (None
when the guide leaves it to curl), other curl flags (``-I``), the URL, every ``-H`` value and the
``-d`` body, character for character (bodies keep the guide's line breaks and indentation). Only
the guide's placeholders are filled in when the example runs (``test_guide_examples.py``):

- the host of the URL (``localhost:8080``, ``localhost:8001``, ``127.0.0.1:8001``, a public tunnel
  URL) becomes the stack's API address;
- ``$ADMIN_TOKEN`` and ``$TOKEN`` in a header become the stack's admin API key;
- ``fill`` lists the ids the guide writes as literals (``1``, ``123``, ``w_abc123``, ``<job_id>``,
  ``<provider>``): each literal is replaced by a template whose ``${name}`` is a value an earlier
  example created. In the URL the value is inserted as it is; in the body as JSON (a string id
  becomes a JSON string where the guide wrote a bare number, since ids are strings here).

``status`` is the answer the route gives on success. Examples the platform does not implement are
listed in ``NOT_IMPLEMENTED`` with the reason, so the inventory is complete.
"""

from __future__ import annotations

import string
from dataclasses import dataclass


@dataclass(frozen=True)
class Example:
    key: str
    where: str  # guide and section
    url: str
    method: str | None = None  # the -X value; None: curl picks (GET, or HEAD with -I)
    headers: tuple[str, ...] = ()
    body: str | None = None  # the -d value
    flags: tuple[str, ...] = ()  # other curl options the guide gives (not -s)
    fill: tuple[tuple[str, str], ...] = ()  # (literal as written, template with ${name})
    status: int = 200
    note: str = ""

    @property
    def needs(self) -> set[str]:
        """Names of earlier results the example refers to."""
        names: set[str] = set()
        for _, template in self.fill:
            for match in string.Template.pattern.finditer(template):
                name = match.group("named") or match.group("braced")
                if name:
                    names.add(name)
        return names

    def shown(self) -> str:
        """The command as the guide writes it (for reports)."""
        parts = ["curl"] + (["-X", self.method] if self.method else []) + list(self.flags) + [self.url]
        for header in self.headers:
            parts += ["-H", f'"{header}"']
        if self.body is not None:
            parts += ["-d", "'" + " ".join(self.body.split()) + "'"]
        return " ".join(parts)


ADMIN = "Authorization: Bearer $ADMIN_TOKEN"
JSON = "Content-Type: application/json"


# ---- Enterprise guide (English; the Chinese edition has the same commands) ---------------------

ENTERPRISE = (
    Example(
        "enterprise/approval-rule-high-cost", "Enterprise guide, 3. Approval Rules Engine",
        "http://localhost:8080/api/approvals/rules", "POST", (ADMIN,),
        """{
    "name": "high_cost",
    "condition": "cost_exceeds",
    "threshold": "50",
    "required_approver_level": "lead",
    "exempt_levels": ["admin"]
  }""", status=201),
    Example(
        "enterprise/sso-keycloak-oidc", "Enterprise guide, 4. API Cookbook: Keycloak (OIDC)",
        "http://localhost:8080/api/cloud/external-auth/providers", "POST", (ADMIN,),
        """{
    "name": "keycloak",
    "provider_type": "oidc",
    "enabled": true,
    "config": {
      "issuer": "https://keycloak.example.com/realms/ml-training",
      "client_id": "simpletuner",
      "client_secret": "your-client-secret",
      "scopes": ["openid", "email", "profile", "roles"],
      "roles_claim": "realm_access.roles"
    }
  }""", status=201,
        note="configuration only: nothing contacts the issuer until a login or a test"),
    Example(
        "enterprise/sso-ldap-active-directory", "Enterprise guide, 4. API Cookbook: LDAP / Active Directory",
        "http://localhost:8080/api/cloud/external-auth/providers", "POST", (ADMIN,),
        """{
    "name": "corporate-ad",
    "provider_type": "ldap",
    "enabled": true,
    "level_mapping": {
      "CN=ML-Admins,OU=Groups,DC=corp,DC=com": ["admin"]
    },
    "config": {
      "server": "ldaps://ldap.corp.com:636",
      "base_dn": "DC=corp,DC=com",
      "bind_dn": "CN=svc-simpletuner,OU=Service Accounts,DC=corp,DC=com",
      "bind_password": "service-account-password",
      "user_search_filter": "(sAMAccountName={username})",
      "use_ssl": true
    }
  }""", status=201,
        note="configuration only: nothing contacts the LDAP server until a login or a test"),
    Example(
        "enterprise/create-researcher", "Enterprise guide, 4. API Cookbook: Create a Researcher",
        "http://localhost:8080/api/users", "POST", (ADMIN,),
        """{
    "email": "researcher@company.com",
    "username": "jsmith",
    "password": "secure_password_123",
    "level_names": ["researcher"]
  }""", status=201),
    Example(
        "enterprise/grant-permission", "Enterprise guide, 4. API Cookbook: Grant Custom Permission",
        "http://localhost:8080/api/users/123/permissions", "POST", (ADMIN,),
        '{"permission_name": "admin.approve", "granted": true}',
        fill=(("/users/123/", "/users/${user_id}/"),)),
    Example(
        "enterprise/create-org", "Enterprise guide, 6. Organizations: Create Organization",
        "http://localhost:8080/api/orgs", "POST", (ADMIN,),
        '{"name": "ML Research", "slug": "ml-research"}', status=201),
    Example(
        "enterprise/org-quota-ceiling", "Enterprise guide, 6. Organizations: Set Org Quota Ceiling",
        "http://localhost:8080/api/orgs/1/quotas", "POST", (ADMIN,),
        '{"quota_type": "concurrent_jobs", "limit_value": 100, "action": "block"}',
        fill=(("/orgs/1/", "/orgs/${org_id}/"),), status=201),
    Example(
        "enterprise/create-team", "Enterprise guide, 6. Organizations: Create Team",
        "http://localhost:8080/api/orgs/1/teams", "POST", (ADMIN,),
        '{"name": "NLP Team", "slug": "nlp"}',
        fill=(("/orgs/1/", "/orgs/${org_id}/"),), status=201),
    Example(
        "enterprise/add-team-member", "Enterprise guide, 6. Organizations: Add User to Team",
        "http://localhost:8080/api/orgs/1/teams/1/members", "POST", (ADMIN,),
        '{"user_id": 123, "role": "member"}',
        fill=(("/orgs/1/", "/orgs/${org_id}/"), ("/teams/1/", "/teams/${team_id}/"), ("123", "${user_id}")),
        status=201),
    Example(
        "enterprise/provider-cost-limit", "Enterprise guide, 6. Cost Limit Configuration",
        "http://localhost:8080/api/cloud/providers/<provider>/config", "PUT", (ADMIN,),
        """{
    "cost_limit_enabled": true,
    "cost_limit_amount": 500.00,
    "cost_limit_period": "monthly",
    "cost_limit_action": "warn"
  }""", fill=(("<provider>", "${provider}"),),
        note="a provider here is a job target (local, worker, auto)"),
    Example(
        "enterprise/email-channel", "Enterprise guide, 8. Notification System: Email",
        "http://localhost:8080/api/cloud/notifications/channels", "POST", (ADMIN,),
        """{
    "channel_type": "email",
    "name": "Primary Email",
    "smtp_host": "smtp.gmail.com",
    "smtp_port": 587,
    "smtp_use_tls": true
  }""", status=201,
        note="configuration only: SMTP is used when mail is sent (the channel's test route is no guide example)"),
)

# Requests the Enterprise guide names in its text without a curl line. They are sent the way its
# cookbook sends requests (admin key, -d without a content type); health probes without a key.
ENTERPRISE_INLINE = (
    Example("enterprise/health-live", "Enterprise guide, 1. Quick Start Checklist: liveness",
            "http://localhost:8080/api/cloud/health/live"),
    Example("enterprise/health-ready", "Enterprise guide, 1. Quick Start Checklist: readiness",
            "http://localhost:8080/api/cloud/health/ready"),
    Example("enterprise/health-deep", "Enterprise guide, 1. Quick Start Checklist: deep check",
            "http://localhost:8080/api/cloud/health"),
    Example("enterprise/list-users", "Enterprise guide, 2. User Management & Roles: GET /api/users",
            "http://localhost:8080/api/users", headers=(ADMIN,)),
    Example("enterprise/list-approval-requests", "Enterprise guide, 3. Approval Workflows: leads check requests",
            "http://localhost:8080/api/approvals/requests", headers=(ADMIN,)),
    Example("enterprise/queue-concurrency", "Enterprise guide, 3. Job Queue & Concurrency: update limits via API",
            "http://localhost:8080/api/queue/concurrency", "POST", (ADMIN,),
            '{"max_concurrent": 10, "user_max_concurrent": 3}'),
    Example("enterprise/cost-limit-status", "Enterprise guide, 6. Cost Limit Configuration: check status",
            "http://localhost:8080/api/cloud/metrics/cost-limit-status", headers=(ADMIN,)),
    Example("enterprise/org-quotas", "Enterprise guide, 7. UI Feature Reference: /api/orgs/{id}/quotas",
            "http://localhost:8080/api/orgs/1/quotas", headers=(ADMIN,),
            fill=(("/orgs/1/", "/orgs/${org_id}/"),)),
    Example("enterprise/audit", "Enterprise guide, 7. UI Feature Reference: /api/audit",
            "http://localhost:8080/api/audit", headers=(ADMIN,)),
)


# ---- Worker orchestration guide (its commands after the first send no key: single-user mode) ----

WORKERS = (
    Example(
        "workers/create-token", "Worker guide, Quick start 2. Create a worker token",
        "http://localhost:8001/api/admin/workers", "POST", (ADMIN, JSON),
        """{
    "name": "gpu-worker-1",
    "worker_type": "persistent",
    "labels": {"location": "datacenter-a", "gpu_type": "a100"}
  }""", status=201),
    Example(
        "workers/submit-to-worker", "Worker guide, Quick start 4. Submit a job to a worker",
        "http://localhost:8001/api/queue/submit", "POST", (JSON,),
        """{
    "config_name": "my-training-config",
    "target": "worker"
  }""", status=201),
    Example(
        "workers/submit-gpu-requirement", "Worker guide, GPU matching",
        "http://localhost:8001/api/queue/submit", "POST", (JSON,),
        """{
    "config_name": "my-config",
    "target": "worker",
    "worker_labels": {"gpu_type": "a100*"}
  }""", status=201),
    Example(
        "workers/create-with-labels", "Worker guide, Labels: set labels when creating a worker",
        "http://localhost:8001/api/admin/workers", "POST", (JSON,),
        """{
    "name": "worker-1",
    "labels": {
      "location": "us-west",
      "gpu_type": "a100",
      "team": "nlp"
    }
  }""", status=201),
    Example(
        "workers/submit-label-team", "Worker guide, Labels: select workers by label (team=nlp)",
        "http://localhost:8001/api/queue/submit", "POST",
        body='{"config_name": "my-config", "worker_labels": {"team": "nlp"}}', status=201),
    Example(
        "workers/submit-label-glob", "Worker guide, Labels: select workers by label (gpu_type a100*)",
        "http://localhost:8001/api/queue/submit", "POST",
        body='{"config_name": "my-config", "worker_labels": {"gpu_type": "a100*"}}', status=201),
    Example(
        "workers/list", "Worker guide, Management: list workers (piped to jq)",
        "http://localhost:8001/api/admin/workers"),
    Example(
        "workers/drain", "Worker guide, Management: drain a worker",
        "http://localhost:8001/api/admin/workers/w_abc123/drain", "POST",
        fill=(("w_abc123", "${worker_id}"),)),
    Example(
        "workers/rotate-token", "Worker guide, Management: rotate a token",
        "http://localhost:8001/api/admin/workers/w_abc123/token", "POST",
        fill=(("w_abc123", "${worker_id}"),)),
    Example(
        "workers/delete", "Worker guide, Management: delete a worker (only once it is offline)",
        "http://localhost:8001/api/admin/workers/w_abc123", "DELETE",
        fill=(("w_abc123", "${worker_id}"),)),
)


# ---- Cloud training operations guide ----------------------------------------------------------

OPERATIONS = (
    Example(
        "operations/health-head", "Operations guide, Troubleshooting storage uploads: test the public URL",
        "https://your-public-url/api/cloud/health", flags=("-I",),
        note="curl -I sends HEAD; the public tunnel URL is the stack's address"),
    Example(
        "operations/job-status", "Operations guide, View upload progress: check current uploads",
        "http://localhost:8001/api/cloud/jobs/{job_id}", fill=(("{job_id}", "${job_id}"),),
        note="the job answers with its upload_progress (what its storage bucket holds)"),
)


# ---- README ----------------------------------------------------------------------------------

README = (
    Example(
        "readme/create-agent", "README, GPU agents",
        "localhost:8001/api/admin/workers", "POST",
        ('Authorization: Bearer $TOKEN', JSON),
        '{"name": "gpu-worker-1", "worker_type": "persistent", "labels": {"gpu_type": "a100", "team": "nlp"}}',
        status=201),
    Example(
        "readme/first-job", "README, Install and run: a first job",
        "localhost:8001/api/queue/submit", "POST", ('Authorization: Bearer $TOKEN', JSON),
        '{"config_name": "tiny-numpy", "target": "auto"}', status=201),
    Example(
        "readme/job-status", "README, Install and run: the job's status",
        "localhost:8001/api/cloud/jobs/<job_id>", headers=('Authorization: Bearer $TOKEN',),
        fill=(("<job_id>", "${job_id}"),)),
    Example(
        "readme/approval-rule", "README, Approvals",
        "http://127.0.0.1:8001/api/approvals/rules", "POST", (ADMIN,),
        """{"name": "high_cost", "condition": "cost_exceeds", "threshold": "50",
       "required_approver_level": "lead", "exempt_levels": ["admin"]}""", status=201),
    Example(
        "readme/metrics-enable", "README, Metrics: turn the export on",
        "http://127.0.0.1:8001/api/cloud/metrics/config", "PUT", (ADMIN,),
        '{"enabled": true, "template": "standard"}'),
    Example(
        "readme/metrics-scrape", "README, Metrics: scrape",
        "http://127.0.0.1:8001/api/cloud/metrics/prometheus", headers=(ADMIN,)),
)


# ---- the rest of the inventory: what the guides show that this platform does not build ----------

NOT_IMPLEMENTED = (
    ("Enterprise guide, 8. Notification System: Slack channel",
     'POST /api/cloud/notifications/channels {"channel_type": "slack", ...}',
     "only e-mail channels exist (channel_type is 'email')"),
    ("Operations guide, storage tunnels", "curl -L https://github.com/cloudflare/...; curl -s https://ngrok-agent...",
     "downloads of third-party tools, not requests to this API"),
)
