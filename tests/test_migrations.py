from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from fulfill.db import engine_for
from fulfill.migrations import downgrade, upgrade
from fulfill.models import metadata
from tests.conftest import fresh_database_url


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_upgrade_to_head_matches_the_models_and_downgrade_to_base_empties(
    backend: str, request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = fresh_database_url(backend, request, tmp_path_factory)
    engine = engine_for(url)
    upgrade(url)
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
    assert differences == []
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())

    downgrade(url, "base")
    assert set(inspect(engine).get_table_names()) <= {"alembic_version"}

    upgrade(url)  # and back up again, as a redeploy after a rollback would
    assert set(metadata.tables) <= set(inspect(engine).get_table_names())
