"""A real local API on a free loopback port, over a real inference service; the tests
that use ``api`` run the real bundled model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from api_support import LiveApi, start_server
from pytestqt.qtbot import QtBot

from llamadesk.core import bundled
from llamadesk.services.inference import InferenceService


@pytest.fixture
def service(qtbot: QtBot) -> Iterator[InferenceService]:
    svc = InferenceService()
    yield svc
    svc.shutdown()


@pytest.fixture
def api(service: InferenceService, bundled_model_path: Path) -> Iterator[LiveApi]:
    server = start_server(service)
    yield LiveApi(server, service, bundled.manifest().id)
    server.stop()
