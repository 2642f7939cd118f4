"""The interactive API docs at ``/docs``, served by the appliance itself.

FastAPI's own page loads Swagger UI from a CDN, which an appliance on a LAN without
internet cannot reach; here the Swagger UI files come from the ``fastapi-offline``
package and the page's script is a file too, so the page runs under a strict
Content-Security-Policy (no inline script, nothing from elsewhere) and refuses to be framed.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from appliance.api.problems import ApiProblem

__all__ = ["DOCS_HEADERS", "install_docs"]

DOCS_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
        "font-src 'self' data:; connect-src 'self'; form-action 'none'; frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

_INIT_JS = """\
window.ui = SwaggerUIBundle({
  url: "openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
});
"""

_PAGE = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} – API docs</title>
<link rel="stylesheet" href="{root}/docs/assets/swagger-ui.css">
<link rel="icon" href="{root}/docs/assets/favicon.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{root}/docs/assets/swagger-ui-bundle.js"></script>
<script src="{root}/docs/assets/init.js"></script>
</body>
</html>
"""

_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css", "favicon.png": "image/png"}


def _assets_dir() -> Path:
    import fastapi_offline

    return Path(fastapi_offline.__file__).parent / "static"


def install_docs(app: FastAPI) -> None:
    """``/docs`` and its files under ``/docs/assets/`` (create ``app`` with ``docs_url=None``)."""
    from html import escape

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = escape(request.scope.get("root_path", "").rstrip("/"))
        return HTMLResponse(_PAGE.format(title=escape(app.title), root=root), headers=DOCS_HEADERS)

    @app.get("/docs/assets/{name}", include_in_schema=False)
    def asset(name: str) -> Response:
        headers = {**DOCS_HEADERS, "Cache-Control": "public, max-age=86400"}
        if name == "init.js":
            return Response(_INIT_JS, media_type="text/javascript", headers=headers)
        if name not in _ASSETS:
            raise ApiProblem(404, "not-found", f"there is no file {name!r} of the API docs")
        return FileResponse(_assets_dir() / name, media_type=_ASSETS[name], headers=headers)
