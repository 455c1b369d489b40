"""`drill-search dashboard`: optuna-dashboard served on a study's storage, with its
artifacts, until Ctrl-C. The address is checked before anything serves; `Serving` says
where the study's page is, just before the server starts."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from dataclasses import dataclass

from . import optuna_private
from .config import ConfigError, DashboardConfig
from .execution.identity import load
from .execution.storage import artifact_store, open_existing


class DashboardError(Exception):
    """The dashboard cannot listen where asked; the message is one sentence for the user."""


@dataclass(frozen=True)
class Serving:
    """The server starts next on `storage`; the study's page is at `address`."""

    storage: str
    address: str


def serve(cfg: DashboardConfig, on_event: Callable[[Serving], None] = lambda e: None) -> None:
    """Serve the study until the process is interrupted."""
    import optuna_dashboard  # heavy: only this command needs it

    study = load(open_existing(cfg.storage), cfg.study_name, cfg.storage)
    check_listen(cfg.host, cfg.port)
    host = "localhost" if cfg.host in ("127.0.0.1", "localhost") else cfg.host
    # the dashboard serves the storage the study was opened on; its page is addressed by the id
    on_event(Serving(cfg.storage, f"http://{host}:{cfg.port}/dashboard/studies/{optuna_private.study_id(study)}"))
    optuna_dashboard.run_server(optuna_private.storage(study), host=cfg.host, port=cfg.port,
                                artifact_store=artifact_store(cfg.storage))


def check_listen(host: str, port: int) -> None:
    """Refuse an address the dashboard cannot listen on before it starts serving: bind it
    as its server will (wsgiref's, through bottle: IPv6 for a host with a colon, address
    reuse on) and let it go."""
    if not 1 <= port <= 65535:  # 0 would listen on a port nobody is told
        raise ConfigError("port", f"must be between 1 and 65535, got {port}.")
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except socket.gaierror:
            raise ConfigError("host", f"{host!r} is not a name or address this machine knows.") from None
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise DashboardError(f"port {port} on {host} is in use by another program: pick another with "
                                     "--port.") from None
            raise DashboardError(f"cannot listen on {host}:{port}: {e.strerror}.") from None
