"""Training configs: GET /api/configs, GET|PUT|DELETE /api/configs/{name}."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from activities.db.models import TrainingConfig
from activities.errors import Forbidden
from activities.jobs import configs
from activities.jobs.configs import ConfigBody
from activities.identity.principals import Principal
from api.deps import PrincipalDep, SessionDep, require
from api.schemas.base import Deleted
from api.schemas.configs import ConfigList, TrainingConfig as ConfigAnswer

router = APIRouter(prefix="/api/configs", tags=["configs"])
ViewerDep = Annotated[Principal, Depends(require("config.view"))]


def _check_edit(principal: Principal, config: TrainingConfig) -> None:
    if principal.has("config.edit.all"):
        return
    if principal.has("config.edit.own") and config.owner_id == principal.user_id:
        return
    raise Forbidden(f"you may not change config {config.name!r} (needs config.edit.all, or config.edit.own "
                    "on a config you created)")


@router.get("", response_model=ConfigList)
def list_configs(session: SessionDep, _: ViewerDep) -> dict:
    return {"configs": [configs.to_dict(c) for c in configs.list_all(session)]}


@router.get("/{name}", response_model=ConfigAnswer)
def get_config(name: str, session: SessionDep, _: ViewerDep) -> dict:
    return configs.to_dict(configs.get(session, name))


@router.put("/{name}", response_model=ConfigAnswer,
            responses={201: {"model": ConfigAnswer, "description": "Created (200: an existing config replaced)"}})
def put_config(name: str, body: ConfigBody, session: SessionDep, principal: PrincipalDep, response: Response) -> dict:
    existing = configs.find(session, name)
    if existing is None:
        principal.require("config.create")
    else:
        _check_edit(principal, existing)
    config, created = configs.upsert(session, name, body, actor=principal.username, owner_id=principal.user_id)
    session.commit()
    response.status_code = 201 if created else 200
    return configs.to_dict(config)


@router.delete("/{name}", response_model=Deleted)
def delete_config(name: str, session: SessionDep, principal: PrincipalDep) -> dict:
    _check_edit(principal, configs.get(session, name))
    configs.delete(session, name, actor=principal.username)
    session.commit()
    return {"deleted": name}
