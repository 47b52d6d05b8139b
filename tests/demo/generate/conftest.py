"""The demo drops the generator tests share (generated once per test module)."""

from __future__ import annotations

import pytest

from assets_project.demo.generate import SOURCES, GenerationReport, generate
from tests.demo.generate.strict import FILES, SEED, SIZE, Source, load_source


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> GenerationReport:
    return generate(tmp_path_factory.mktemp("demo") / "landing", SIZE, SEED, FILES)


@pytest.fixture(scope="module")
def sources(demo: GenerationReport) -> dict[str, Source]:
    return {name: load_source(demo.out, name) for name in SOURCES}
