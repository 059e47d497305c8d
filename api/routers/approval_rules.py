"""Approval rules: /api/approvals/conditions (any signed-in user), reading rules (admin.approve,
so leads see what they approve against), changing them (admin.config)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request

from activities.governance import approval_rules
from activities.governance.approval_rules import RuleCreate, RulePatch
from activities.identity.principals import Principal
from api.deps import PrincipalDep, SessionDep, client_ip, require
from api.schemas.approval_rules import ApprovalRule, ConditionList, RuleList
from api.schemas.base import Deleted

router = APIRouter(prefix="/api/approvals", tags=["approval rules"])

ApproveDep = Annotated[Principal, Depends(require("admin.approve"))]
ConfigAdminDep = Annotated[Principal, Depends(require("admin.config"))]


@router.get("/conditions", response_model=ConditionList)
def list_conditions(_: PrincipalDep) -> dict:
    return {"conditions": approval_rules.conditions()}


@router.get("/rules", response_model=RuleList)
def list_rules(session: SessionDep, _: ApproveDep, enabled: bool | None = None) -> dict:
    return {"rules": [approval_rules.to_dict(r) for r in approval_rules.list_rules(session, enabled)]}


@router.get("/rules/{rule_id}", response_model=ApprovalRule)
def get_rule(rule_id: str, session: SessionDep, _: ApproveDep) -> dict:
    return approval_rules.to_dict(approval_rules.get(session, rule_id))


@router.post("/rules", status_code=201, response_model=ApprovalRule)
def create_rule(body: RuleCreate, session: SessionDep, principal: ConfigAdminDep, request: Request) -> dict:
    rule = approval_rules.create(session, body, principal, client_ip(request))
    session.commit()
    return approval_rules.to_dict(rule)


@router.patch("/rules/{rule_id}", response_model=ApprovalRule)
def patch_rule(rule_id: str, body: RulePatch, session: SessionDep, principal: ConfigAdminDep,
               request: Request) -> dict:
    rule = approval_rules.patch(session, rule_id, body, principal, client_ip(request))
    session.commit()
    return approval_rules.to_dict(rule)


@router.delete("/rules/{rule_id}", response_model=Deleted)
def delete_rule(rule_id: str, session: SessionDep, principal: ConfigAdminDep, request: Request) -> dict:
    approval_rules.delete(session, rule_id, principal, client_ip(request))
    session.commit()
    return {"deleted": rule_id}
