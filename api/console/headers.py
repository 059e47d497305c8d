"""Security headers on every console answer (pages, redirects, static files, error pages)."""

from __future__ import annotations

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
NOT_CONSOLE = ("/api/", "/docs", "/redoc", "/openapi.json", "/static-offline-docs")
HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-content-type-options", b"nosniff"),
           (b"referrer-policy", b"same-origin"), (b"x-frame-options", b"DENY")]


def is_console_path(path: str) -> bool:
    return path != "/api" and not path.startswith(NOT_CONSOLE)


class ConsoleHeadersMiddleware:
    """Adds the CSP (no inline script or style) and friends to answers of console paths only: the
    REST API and the bundled API docs answer exactly as before."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_console_path(scope["path"]):
            return await self.app(scope, receive, send)

        async def with_headers(message):
            if message["type"] == "http.response.start":
                names = {k.lower() for k, _ in message.get("headers", [])}
                extra = [(k, v) for k, v in HEADERS if k not in names]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, with_headers)
