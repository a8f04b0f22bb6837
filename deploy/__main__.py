"""`python -m deploy {plan,apply} --env dev|staging|prod --tag TAG`: Paradyze's deploy to Google Cloud.

    python -m deploy plan  --env staging --tag v1.4.0    # what would change, nothing done
    python -m deploy apply --env staging --tag v1.4.0    # do it; health-check; roll back on failure

The images `functions:TAG` and `console:TAG` must be in the environment's image repository
(cloudbuild.yaml builds and pushes them), and the database must already be migrated (cloudbuild.yaml
runs `supabase db push` first): the release's functions refuse to serve a database behind the newest
migration in supabase/migrations. Exit status: 0 done (or nothing to do), 1 the health check failed
and traffic went back to the previous revisions, 2 the plan is blocked (the message says what to do).
"""

from __future__ import annotations

import argparse
import logging
import sys

from pydantic_settings import BaseSettings, SettingsConfigDict

from . import config
from .apply import apply
from .desired import Release
from .gcp import Endpoints, make_clients
from .plan import make_plan
from .targets import newest_migration


class _EndpointSettings(Endpoints, BaseSettings):
    model_config = SettingsConfigDict(env_prefix="", extra="ignore", populate_by_name=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=("plan", "apply"))
    parser.add_argument("--env", required=True, choices=config.environments())
    parser.add_argument("--tag", required=True, help="the images' tag (cloudbuild.yaml: the git tag or commit)")
    parser.add_argument("--schema-version", default=None,
                        help="the migration the release needs (default: the newest in supabase/migrations)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    env = config.load(args.env)
    release = Release(tag=args.tag, schema_version=args.schema_version or newest_migration())
    clients = make_clients(_EndpointSettings())
    plan = make_plan(env, release, clients)
    print(f"{args.env} ({env.project}, {env.region}), release {release.tag}, schema {release.schema_version}:")
    for change in plan.changes:
        print(f"  {change}")
    if not plan.changes:
        print("  nothing to change")
    for problem in plan.blocked:
        print(f"  BLOCKED: {problem}")
    if plan.blocked:
        return 2
    if args.command == "plan":
        return 0
    report = apply(plan, clients)
    for line in report.lines():
        print(line)
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
