"""Alembic, driven from code: ``fulfill migrate`` and the embedded default's start-up."""

from __future__ import annotations

from pathlib import Path

from alembic.config import Config

from alembic import command


def script_location() -> Path:
    """The migrations: inside the installed wheel, or at the repository root when editable."""
    packaged = Path(__file__).parent / "_alembic"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parents[2] / "alembic"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(script_location()))
    config.set_main_option("sqlalchemy.url", database_url.replace("%", "%%"))
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    command.upgrade(alembic_config(database_url), revision)


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)
