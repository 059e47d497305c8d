"""Training configs: GET /api/configs, GET|PUT|DELETE /api/configs/{name}."""

from __future__ import annotations

from fastapi import APIRouter, Response

from activities.services import configs
from activities.services.configs import ConfigBody
from api.deps import PrincipalDep, SessionDep

router = APIRouter(prefix="/api/configs", tags=["configs"])


@router.get("")
def list_configs(session: SessionDep, _: PrincipalDep) -> dict:
    return {"configs": [configs.to_dict(c) for c in configs.list_all(session)]}


@router.get("/{name}")
def get_config(name: str, session: SessionDep, _: PrincipalDep) -> dict:
    return configs.to_dict(configs.get(session, name))


@router.put("/{name}")
def put_config(name: str, body: ConfigBody, session: SessionDep, principal: PrincipalDep, response: Response) -> dict:
    config, created = configs.upsert(session, name, body, actor=principal.username, owner_id=principal.user_id)
    session.commit()
    response.status_code = 201 if created else 200
    return configs.to_dict(config)


@router.delete("/{name}")
def delete_config(name: str, session: SessionDep, principal: PrincipalDep) -> dict:
    configs.delete(session, name, actor=principal.username)
    session.commit()
    return {"deleted": name}
