"""The console's typed settings; the only place the console reads the environment."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    api_url: str = Field(default="http://127.0.0.1:8080", alias="PARADYZE_API_URL")
    admin_token: SecretStr | None = Field(default=None, alias="PARADYZE_ADMIN_TOKEN")
    home: Path = Field(default=Path(".paradyze"), alias="PARADYZE_HOME")
    fixtures_dir: Path = Field(
        default=REPO_ROOT.parent / "shared" / "fixtures" / "characters", alias="PARADYZE_FIXTURES_DIR"
    )
    # Creating or waking an agent waits for it to answer health, which can take a while.
    request_timeout: float = Field(default=90.0, alias="PARADYZE_CONSOLE_TIMEOUT")
    # How often the list, an agent's header, timeline and followed logs re-read the functions.
    # The region whose Cloud Run prices the Costs page and the list's $/month start from.
    region: str = Field(default="us-central1", alias="PARADYZE_GCP_REGION")
    refresh_seconds: float = Field(default=5.0, gt=0, alias="PARADYZE_CONSOLE_REFRESH")

    def token(self) -> str | None:
        """The admin token: the env variable first, then the file the local emulator writes."""
        if self.admin_token is not None and self.admin_token.get_secret_value():
            return self.admin_token.get_secret_value()
        path = self.home / "admin-token"
        try:
            value = path.read_text().strip()
        except OSError:
            return None
        return value or None

    def fixture_files(self) -> list[Path]:
        folder = self.fixtures_dir
        if not folder.is_dir():
            return []
        return sorted(folder.glob("*.json"))


@functools.lru_cache(maxsize=1)
def get_console_settings() -> ConsoleSettings:
    return ConsoleSettings()
