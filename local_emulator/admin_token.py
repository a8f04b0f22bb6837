"""`python -m local_emulator.admin_token`: mint a short-lived admin token, or revoke every one so far.

The token goes to stdout and nowhere else (`--write` also puts it in $PARADYZE_HOME/admin-token,
readable by you only, where the console looks for it). It is signed with the platform's JWT secret
and checked against the database's token generation, so run this with the same settings as the
functions (PARADYZE_HOME, or SUPABASE_JWT_SECRET and DATABASE_URL).

    ADMIN="Authorization: Bearer $(.venv/bin/python -m local_emulator.admin_token)"
    .venv/bin/python -m local_emulator.admin_token --revoke-all    # every admin token minted so far stops working
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT / "functions"))

from paradyze import admin_tokens, db  # noqa: E402
from paradyze.errors import ParadyzeError  # noqa: E402
from paradyze.settings import get_settings  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m local_emulator.admin_token", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--hours", type=float, default=settings.admin_token_ttl_hours,
                        help=f"lifetime, at most PARADYZE_ADMIN_TOKEN_TTL_HOURS ({settings.admin_token_ttl_hours:g})")
    parser.add_argument("--actor", default="admin", help="how the agents' events name whoever uses the token")
    parser.add_argument("--revoke-all", action="store_true",
                        help="refuse every admin token minted so far, then mint none (unless --mint)")
    parser.add_argument("--mint", action="store_true", help="with --revoke-all: mint a new token afterwards")
    parser.add_argument("--write", action="store_true", help="also write the token to $PARADYZE_HOME/admin-token")
    args = parser.parse_args(argv)
    if args.hours <= 0:
        parser.error("--hours must be positive")
    try:
        if args.revoke_all:
            generation = admin_tokens.revoke_all()
            print(f"every admin token minted before now is revoked (generation {generation})", file=sys.stderr)
            if not args.mint:
                return 0
        token = admin_tokens.mint(settings, ttl_hours=args.hours, actor=args.actor)
    except ParadyzeError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return 1
    finally:
        db.close()
    if args.write:
        path = settings.state_dir / "admin-token"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        with open(path, "x", opener=lambda p, f: os.open(p, f, 0o600)) as fh:
            fh.write(token + "\n")
    print(admin_tokens.describe(token) + (f", written to {settings.state_dir / 'admin-token'}" if args.write else ""),
          file=sys.stderr)
    print(token)
    return 0


if __name__ == "__main__":
    sys.exit(main())
