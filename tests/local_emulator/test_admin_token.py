"""The emulator's admin token: never printed or written by the emulator, minted on demand, revocable."""

from __future__ import annotations

import re
import subprocess
import sys

from helpers import REPO, Emulator

JWT = re.compile(r"eyJ[\w-]+\.eyJ[\w-]+\.[\w-]+")


def test_the_emulator_prints_how_to_mint_a_token_not_a_token(emulator: Emulator) -> None:
    assert not (emulator.home / "admin-token").exists()  # nothing minted one yet: the emulator wrote none
    log = emulator.log.read_text(errors="replace")
    assert "python -m local_emulator.admin_token" in log
    assert not JWT.search(log), "a token in the emulator's output"


def test_a_minted_token_works_until_every_token_is_revoked(emulator: Emulator) -> None:
    token = emulator.token
    assert emulator.get("list_backups", token=token).status_code == 200
    done = subprocess.run([sys.executable, "-m", "local_emulator.admin_token", "--revoke-all", "--mint"],
                          cwd=REPO, env=emulator.env(), capture_output=True, text=True, timeout=120, check=True)
    assert emulator.get("list_backups", token=token).status_code == 401
    assert emulator.get("list_backups", token=done.stdout.strip()).status_code == 200
    # Restarting the emulator brings no old token back.
    emulator.stop()
    emulator.start()
    assert emulator.get("list_backups", token=token).status_code == 401
    assert not JWT.search(emulator.log.read_text(errors="replace"))
