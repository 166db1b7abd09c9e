"""``shouyin serve``: run the lane's web server (cashier and admin pages, API, terminal links).

:func:`serve` is mounted by :mod:`shouyin.cli` as a command. The server binds the first of
``Settings.listen_addresses`` (loopback by default) at ``Settings.web_port``; ``--host`` and
``--port`` override them. Ctrl-C stops it cleanly: uvicorn ends the app's lifespan, which closes
the terminal links and the event streams and disposes of the database engine.
"""

from __future__ import annotations

import copy
import ipaddress
import logging
from typing import Annotated, Any, Final

import typer

from shouyin.config import Settings
from shouyin.domain.promotions import Promotion
from shouyin.i18n import register, t
from shouyin.logs import configure_logging
from shouyin.web.admin_logs import LogRing, install_log_ring

__all__ = ["MESSAGES", "serve", "setup_server_logging", "url_for", "uvicorn_log_config"]

logger = logging.getLogger(__name__)

MESSAGES: Final[dict[str, dict[str, str]]] = {
    "serve.url": {
        "zh": "收银系统已启动：{url}（Ctrl-C 停止）",
        "en": "shouyin is serving at {url} (Ctrl-C to stop)",
    },
    "serve.stopped": {"zh": "已停止", "en": "Stopped"},
    "serve.no_certificate": {
        "zh": "没有服务器证书（{path}）：先运行 shouyin init",
        "en": "No server certificate in {path}: run shouyin init first",
    },
}
register(MESSAGES)


def url_for(host: str, port: int) -> str:
    """The browser URL of a bound host and port (IPv6 literals in brackets)."""
    try:
        is_v6 = ipaddress.ip_address(host).version == 6
    except ValueError:
        is_v6 = False
    return f"http://[{host}]:{port}/" if is_v6 else f"http://{host}:{port}/"


def setup_server_logging(level: str = "info") -> LogRing:
    """The server's logging (:func:`shouyin.logs.configure_logging`, card-scrubbed): records
    of ``level`` and up go to standard error, and info and up into the admin page's in-memory
    log ring, which is returned (installed after the configuration, which replaces the root
    handlers), whatever ``level`` the console gets.
    """
    console = logging.StreamHandler()
    console.setLevel(level.upper())
    configure_logging(logging.INFO, handlers=[console])
    return install_log_ring()


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's logging configuration with a plain formatter for access lines: the app puts
    the card scrubber on ``uvicorn.access`` (:func:`shouyin.web.app.create_app`), which formats
    each record's arguments into its message, and uvicorn's own access formatter cannot do
    without them (every request line would be a "Logging error")."""
    import uvicorn.config

    config = copy.deepcopy(uvicorn.config.LOGGING_CONFIG)
    config["formatters"]["access"] = {
        "()": "uvicorn.logging.DefaultFormatter",
        "fmt": "%(levelprefix)s %(message)s",
        "use_colors": None,
    }
    return config


def serve(
    host: Annotated[
        str | None, typer.Option(help="address to bind (default: first SHOUYIN_LISTEN_ADDRESSES)")
    ] = None,
    port: Annotated[int | None, typer.Option(help="port (default: SHOUYIN_WEB_PORT)")] = None,
    demo_promotions: Annotated[
        bool, typer.Option(help="apply the demo store's promotions (第二件半价, 满100减20)")
    ] = False,
    log_level: Annotated[
        str, typer.Option(help="log level of the server and uvicorn (the admin page keeps info)")
    ] = "info",
    tls: Annotated[
        bool,
        typer.Option(
            help="HTTPS with the store's server certificate (from `shouyin init`): use it when "
            "the admin pages are opened from another PC; cookies are then Secure"
        ),
    ] = False,
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
        from shouyin.demo_store import DEMO_PROMOTIONS

        promotions = DEMO_PROMOTIONS
    setup_server_logging(log_level)
    runtime = LaneRuntime(settings, promotions=promotions)
    # printer, drawer (its openings into the audit log), customer display, if configured
    hook = hook_from_settings(settings, runtime.engine)
    if hook is not None:
        runtime.devices[settings.lane_id] = hook
    tls_files: dict[str, Any] = {}
    if tls:
        from shouyin.link.keystore import KeyStore

        keys = KeyStore(settings.keys_dir)
        cert, key = keys.directory / KeyStore.SERVER_CERT, keys.directory / KeyStore.SERVER_KEY
        if not (cert.exists() and key.exists()):
            raise typer.BadParameter(t("serve.no_certificate", path=str(keys.directory)))
        tls_files = {"ssl_certfile": str(cert), "ssl_keyfile": str(key)}
    app = create_app(runtime, secure_cookies=tls)
    url = url_for(bind, bind_port)
    typer.echo(t("serve.url", url=url.replace("http://", "https://", 1) if tls else url))
    # uvicorn handles SIGINT/SIGTERM itself: it stops accepting, lets the lifespan close the
    # runtime (terminal links, engine), then returns here. Open event streams (every cashier
    # page has one) would hold the shutdown forever: they get a few seconds, then are cut.
    uvicorn.run(
        app,
        host=bind,
        port=bind_port,
        log_level=log_level,
        log_config=uvicorn_log_config(),
        lifespan="on",
        timeout_graceful_shutdown=3,
        **tls_files,
    )
    typer.echo(t("serve.stopped"))
