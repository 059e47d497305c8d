"""One module per API area, each exposing ``router``; the app includes every module found here,
in name order (so ``resource_rules``' literal ``/api/users/resource-rules`` is matched before
``users``' ``/api/users/{user_id}``; the route-permission walk would notice a mix-up)."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import APIRouter


def all_routers() -> list[APIRouter]:
    names = sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))
    return [importlib.import_module(f"{__name__}.{name}").router for name in names]
