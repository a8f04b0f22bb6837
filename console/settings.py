"""The console's typed settings; the only place the console reads the environment."""

from __future__ import annotations

import functools
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from console import identity

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConsoleSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)

    api_url: str = Field(default="http://127.0.0.1:8080", alias="PARADYZE_API_URL")
    admin_token: SecretStr | None = Field(default=None, alias="PARADYZE_ADMIN_TOKEN")
    # Deployed on Cloud Run: the functions' audience. Without an admin token the console then calls
    # them with its service account's Google ID token (console/identity.py).
    api_audience: str | None = Field(default=None, alias="PARADYZE_API_AUDIENCE")
    home: Path = Field(default=Path(".paradyze"), alias="PARADYZE_HOME")
    fixtures_dir: Path = Field(
        default=REPO_ROOT.parent / "shared" / "fixtures" / "characters", alias="PARADYZE_FIXTURES_DIR"
    )
    # Creating or waking an agent waits for it to answer health, which can take a while.
    request_timeout: float = Field(default=90.0, alias="PARADYZE_CONSOLE_TIMEOUT")
    # The region whose Cloud Run prices the Costs page and the list's $/month start from.
    region: str = Field(default="us-central1", alias="PARADYZE_GCP_REGION")
    # How often the list, an agent's header, timeline and followed logs re-read the functions.
    refresh_seconds: float = Field(default=5.0, gt=0, alias="PARADYZE_CONSOLE_REFRESH")

    def token(self) -> str | None:
        """The token the console calls with: PARADYZE_ADMIN_TOKEN first, then its service account's ID
        token when PARADYZE_API_AUDIENCE is set, then the file the local emulator writes. Raises
        identity.NoIdentity when the audience is set and no ID token can be had."""
        if self.admin_token is not None and self.admin_token.get_secret_value():
            return self.admin_token.get_secret_value()
        if self.api_audience:
            return identity.id_token(self.api_audience)
        path = self.home / "admin-token"
        try:
            value = path.read_text().strip()
        except OSError:
            return None
        return value or None

    def token_source(self) -> str:
        """Where the console's token comes from, for the sidebar; never the token itself."""
        if self.admin_token is not None and self.admin_token.get_secret_value():
            return "Admin token: from PARADYZE_ADMIN_TOKEN"
        if self.api_audience:
            return f"Identity: this service's account (ID tokens for `{self.api_audience}`)"
        path = self.home / "admin-token"
        return f"Admin token: from {path}" if path.is_file() else "Admin token: missing"

    def fixture_files(self) -> list[Path]:
        folder = self.fixtures_dir
        if not folder.is_dir():
            return []
        return sorted(folder.glob("*.json"))


@functools.lru_cache(maxsize=1)
def get_console_settings() -> ConsoleSettings:
    return ConsoleSettings()
