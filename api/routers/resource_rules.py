"""Resource rules CRUD (admin.users): /api/users/resource-rules."""

from __future__ import annotations

from fastapi import APIRouter, Request

from activities.governance import resource_rules
from activities.governance.resource_rules import RuleBody
from api.deps import SessionDep, UsersAdminDep, client_ip
from api.schemas.base import Deleted
from api.schemas.resource_rules import ResourceRule, ResourceRuleList

router = APIRouter(prefix="/api/users/resource-rules", tags=["resource rules"])


@router.get("", response_model=ResourceRuleList)
def list_rules(session: SessionDep, _: UsersAdminDep, level: str | None = None) -> dict:
    return {"rules": [resource_rules.to_dict(r) for r in resource_rules.list_all(session, level)]}


@router.post("", status_code=201, response_model=ResourceRule)
def create_rule(body: RuleBody, session: SessionDep, principal: UsersAdminDep, request: Request) -> dict:
    rule = resource_rules.create(session, body, principal, client_ip(request))
    session.commit()
    return resource_rules.to_dict(rule)


@router.get("/{rule_id}", response_model=ResourceRule)
def get_rule(rule_id: str, session: SessionDep, _: UsersAdminDep) -> dict:
    return resource_rules.to_dict(resource_rules.get(session, rule_id))


@router.put("/{rule_id}", response_model=ResourceRule)
def put_rule(rule_id: str, body: RuleBody, session: SessionDep, principal: UsersAdminDep, request: Request) -> dict:
    rule = resource_rules.replace(session, rule_id, body, principal, client_ip(request))
    session.commit()
    return resource_rules.to_dict(rule)


@router.delete("/{rule_id}", response_model=Deleted)
def delete_rule(rule_id: str, session: SessionDep, principal: UsersAdminDep, request: Request) -> dict:
    resource_rules.delete(session, rule_id, principal, client_ip(request))
    session.commit()
    return {"deleted": rule_id}
