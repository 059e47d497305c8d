"""Every outbound HTTP client of the server side comes from ``activities/outbound_http/client.py``:
no other module of ``api/`` or ``activities/`` makes an httpx client (or an httpx-based OAuth client),
so proxies, the CA bundle, the timeout and the correlation id apply to every call later code adds."""

from __future__ import annotations

import ast
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
FACTORY = REPO_ROOT / "activities" / "outbound_http" / "client.py"
HTTP_MODULES = ("httpx", "authlib.integrations.httpx_client", "authlib.integrations.requests_client")


def client_constructions(source: str) -> list[tuple[int, str]]:
    """(line, name) of each call that makes a client: ``httpx.Client(...)`` / ``httpx.AsyncClient(...)``
    (any alias of the module) or a ``...Client`` class imported from an HTTP client module."""
    tree = ast.parse(source)
    module_aliases: set[str] = set()
    class_names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            module_aliases.update(a.asname or a.name for a in node.names if a.name in HTTP_MODULES)
        elif isinstance(node, ast.ImportFrom) and node.module in HTTP_MODULES:
            class_names.update(a.asname or a.name for a in node.names if a.name.endswith("Client"))
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and isinstance(func.value, ast.Name) and \
                func.value.id in module_aliases and func.attr.endswith("Client"):
            found.append((node.lineno, f"{func.value.id}.{func.attr}"))
        elif isinstance(func, ast.Name) and func.id in class_names:
            found.append((node.lineno, func.id))
    return found


def test_the_scan_finds_each_way_of_making_a_client():
    source = ("import httpx\nimport httpx as hx\nfrom httpx import AsyncClient as AC\n"
              "from authlib.integrations.httpx_client import AsyncOAuth2Client\n"
              "a = httpx.AsyncClient(timeout=1)\nb = hx.Client()\nc = AC()\nd = AsyncOAuth2Client('id')\n"
              "e = httpx.Timeout(3)\n")
    assert [name for _, name in client_constructions(source)] == ["httpx.AsyncClient", "hx.Client", "AC",
                                                                  "AsyncOAuth2Client"]


def test_only_the_factory_makes_outbound_clients():
    offenders = []
    for top in ("api", "activities"):
        for path in sorted((REPO_ROOT / top).rglob("*.py")):
            if path == FACTORY:
                continue
            for line, name in client_constructions(path.read_text()):
                offenders.append(f"{path.relative_to(REPO_ROOT)}:{line}: {name}(...)")
    assert not offenders, ("make outbound clients with activities.outbound_http.client.get_async_client / "
                           "get_sync_client instead:\n" + "\n".join(offenders))
    assert client_constructions(FACTORY.read_text()), "the factory itself makes the clients"
