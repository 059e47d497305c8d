"""The API's documentation pages work offline: /docs and /redoc load their scripts and styles from
the API itself, and every asset they name is served."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.stack import Stack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def api(shared_api):
    return shared_api


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_documentation_pages_need_no_internet(api: Stack, page: str):
    html = httpx.get(api.api_url + page, trust_env=False, timeout=15)
    assert html.status_code == 200 and "text/html" in html.headers["content-type"]
    assets = re.findall(r"""(?:src|href)\s*[=:]\s*['"]([^'"]+)['"]""", html.text)
    scripts = [a for a in assets if a.endswith((".js", ".css"))]
    assert scripts, html.text
    for asset in assets:
        assert not asset.startswith(("http://", "https://", "//")), f"{page} loads {asset} from elsewhere"
    for asset in scripts:
        answer = httpx.get(api.api_url + asset, trust_env=False, timeout=15)
        assert answer.status_code == 200 and len(answer.content) > 10_000, asset
    assert "/openapi.json" in html.text
    assert httpx.get(api.api_url + "/openapi.json", trust_env=False, timeout=15).json()["paths"]
