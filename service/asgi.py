"""ASGI entry for granian/uvicorn: ``granian --factory service.asgi:app``."""

from litestar import Litestar

from service.app import create_app
from service.settings import Settings


def app() -> Litestar:
    return create_app(Settings.from_env())
