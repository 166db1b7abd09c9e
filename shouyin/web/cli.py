"""``shouyin serve``: run the lane's web server (cashier and admin pages, API, terminal links).

:func:`serve` is mounted by :mod:`shouyin.cli` as a command. The server binds the first of
``Settings.listen_addresses`` (loopback by default) at ``Settings.web_port``; ``--host`` and
``--port`` override them. Ctrl-C stops it cleanly: uvicorn ends the app's lifespan, which closes
the terminal links and the event streams and disposes of the database engine.
"""

from __future__ import annotations

import ipaddress
import logging
from typing import Annotated, Final

import typer

from shouyin.config import Settings
from shouyin.domain.promotions import Promotion
from shouyin.i18n import register, t

__all__ = ["MESSAGES", "serve", "url_for"]

logger = logging.getLogger(__name__)

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "serve.url": {
        "zh": "收银系统已启动：{url}（Ctrl-C 停止）",
        "en": "shouyin is serving at {url} (Ctrl-C to stop)",
    },
    "serve.stopped": {"zh": "已停止", "en": "Stopped"},
}
register(MESSAGES)


def url_for(host: str, port: int) -> str:
    """The browser URL of a bound host and port (IPv6 literals in brackets)."""
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    return f"http://[{host}]:{port}/" if is_v6 else f"http://{host}:{port}/"


def serve(
    host: Annotated[
        str | None, typer.Option(help="address to bind (default: first SHOUYIN_LISTEN_ADDRESSES)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default: SHOUYIN_WEB_PORT)")] = None,
    demo_promotions: Annotated[
        bool, typer.Option(help="apply the demo store's promotions (第二件半价, 满100减20)")
    ] = False,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Run the web server: cashier page at /, admin pages, API at /api (/api/openapi.json)."""
    import uvicorn

    from shouyin.web.app import create_app
    from shouyin.web.devices import hook_from_settings
    from shouyin.web.runtime import LaneRuntime

    settings = Settings()
    bind = host or (settings.listen_addresses[0] if settings.listen_addresses else "127.0.0.1")
    bind_port = port or settings.web_port
    promotions: tuple[Promotion, ...] = ()
    if demo_promotions:
        from shouyin.demo import DEMO_PROMOTIONS

        promotions = DEMO_PROMOTIONS
    hook = hook_from_settings(settings)  # printer, drawer, customer display, if configured
    devices = {settings.lane_id: hook} if hook is not None else None
    runtime = LaneRuntime(settings, promotions=promotions, devices=devices)
    app = create_app(runtime)
    typer.echo(t("serve.url", url=url_for(bind, bind_port)))
    # uvicorn handles SIGINT/SIGTERM itself: it stops accepting, lets the lifespan close the
    # runtime (terminal links, engine), then returns here. Open event streams (every cashier
    # page has one) would hold the shutdown forever: they get a few seconds, then are cut.
    uvicorn.run(
        app,
        host=bind,
        port=bind_port,
        log_level=log_level,
        lifespan="on",
        timeout_graceful_shutdown=3,
    )
    typer.echo(t("serve.stopped"))
