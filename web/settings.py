"""Settings of the running web app (from the environment), beside the project's own sanigrid.toml."""

from __future__ import annotations

from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class AppSettings(BaseSettings):
    """``SANIGRID_PROJECT`` names the project folder the app serves (default: the current folder)."""

    model_config = SettingsConfigDict(env_prefix="SANIGRID_", extra="ignore")

    project: Path = Path(".")
    gzip_min_bytes: int = 1000
