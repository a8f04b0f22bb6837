"""Paradyze's functions: one thin functions-framework HTTP entry point per operation.

Each decorator declares the operation once (who may call it, its request and response models);
the OpenAPI document at openapi_spec is built from those declarations.
"""

from __future__ import annotations

import gc
import sys
from pathlib import Path

import flask
import functions_framework

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the paradyze package ships beside main.py

from paradyze import (  # noqa: E402
    backup,
    conversation,
    eliza_character,
    experiments,
    health,
    lifecycle,
    messaging,
    openapi,
    policy,
    queries,
    releases,
    restore_preview,
    retention,
    sweeps,
)
from paradyze.agents import (  # noqa: E402
    AgentCreate,
    AgentRef,
    CharacterUpdate,
    LogsQuery,
    MessageSend,
    PolicyUpdate,
)
from paradyze.api_models import (  # noqa: E402
    AgentCreated,
    AgentEnvelope,
    AgentList,
    AgentListQuery,
    AgentUpdated,
    BackupContents,
    BackupContentsQuery,
    BackupEnvelope,
    BackupList,
    BackupsQuery,
    CreateHeaders,
    EventList,
    EventsQuery,
    HealthQuery,
    HealthReport,
    IdleSweep,
    LogLines,
    MessageHistory,
    MessageResult,
    MessagesQuery,
    RestoreEnvelope,
    SyncEnvelope,
    VersionList,
    VersionsQuery,
)
from paradyze.auth import Caller  # noqa: E402
from paradyze.backup import BackupRef  # noqa: E402
from paradyze.experiment_models import (  # noqa: E402
    ExperimentEnvelope,
    ExperimentList,
    ExperimentRef,
    ExperimentRequest,
    ExperimentsQuery,
)
from paradyze.http import Registry, cors  # noqa: E402
from paradyze.logs import configure_logging  # noqa: E402
from paradyze.release_models import (  # noqa: E402
    ReleaseEnvelope,
    ReleaseList,
    ReleaseRequest,
    ReleasesQuery,
    RollbackRequest,
)
from paradyze.scheduler import sync as scheduler_sync  # noqa: E402
from paradyze.settings import get_settings  # noqa: E402
from paradyze.telemetry import fleet as telemetry_fleet  # noqa: E402
from paradyze.telemetry import setup as telemetry_setup  # noqa: E402

configure_logging()
settings = get_settings()  # a missing or malformed setting stops the functions here, naming each one
telemetry_setup(settings, telemetry_fleet.pool_stats)
registry = Registry()
endpoint = registry.endpoint
Request = flask.Request


@functions_framework.http
@endpoint(auth="user", methods=("POST",), body=AgentCreate, headers=CreateHeaders, response=AgentCreated,
          status=(201, 200))
def create_agent(
    request: Request, caller: Caller, body: AgentCreate, headers: CreateHeaders
) -> tuple[AgentCreated, int]:
    """Create an agent from a character file and start it"""
    agent, created = lifecycle.create(caller, body, headers.idempotency_key)
    warnings = eliza_character.unavailable_plugins(body.character.model_dump(mode="json", exclude_unset=True))
    return AgentCreated(agent=agent, created=created, warnings=warnings), 201 if created else 200


@functions_framework.http
@endpoint(auth="user", methods=("GET",), query=AgentRef, response=AgentEnvelope)
def get_agent(request: Request, caller: Caller, query: AgentRef) -> AgentEnvelope:
    """One agent"""
    return AgentEnvelope(agent=queries.get(caller, query.agent_id))


@functions_framework.http
@endpoint(auth="user", methods=("GET",), query=AgentListQuery, response=AgentList)
def list_agents(request: Request, caller: Caller, query: AgentListQuery) -> AgentList:
    """The caller's agents (every agent for the admin), oldest first, a page at a time; filtered by status or name"""
    agents, next_cursor = queries.list_all(caller, status=query.status, q=query.q, limit=query.limit,
                                           cursor=query.cursor)
    return AgentList(agents=agents, next_cursor=next_cursor)


@functions_framework.http
@endpoint(auth="user", methods=("POST",), body=AgentRef, response=AgentEnvelope)
def hibernate_agent(request: Request, caller: Caller, body: AgentRef) -> AgentEnvelope:
    """Stop the agent's compute, keep everything else"""
    return AgentEnvelope(agent=lifecycle.hibernate(caller, body.agent_id))


@functions_framework.http
@endpoint(auth="user", methods=("POST",), body=AgentRef, response=AgentEnvelope)
def wake_agent(request: Request, caller: Caller, body: AgentRef) -> AgentEnvelope:
    """Start the agent again; answers once it is healthy"""
    return AgentEnvelope(agent=lifecycle.wake(caller, body.agent_id))


@functions_framework.http
@endpoint(auth="user", methods=("POST",), body=AgentRef, response=AgentEnvelope)
def delete_agent(request: Request, caller: Caller, body: AgentRef) -> AgentEnvelope:
    """Stop the agent and remove its rows and files"""
    return AgentEnvelope(agent=lifecycle.delete(caller, body.agent_id))


@functions_framework.http
@endpoint(auth="user", methods=("POST",), body=MessageSend, response=MessageResult, own_slot=True)
def send_message(request: Request, caller: Caller, body: MessageSend) -> MessageResult:
    """Send a message and answer the agent's replies; a hibernated agent is woken first"""
    return MessageResult.model_validate(messaging.send(caller, body))


@functions_framework.http
@endpoint(auth="user", methods=("GET",), query=MessagesQuery, response=MessageHistory)
def agent_messages(request: Request, caller: Caller, query: MessagesQuery) -> MessageHistory:
    """The caller's conversation with the agent (messages delivered and its replies), oldest first"""
    turns = conversation.history(caller, query.agent_id, query.limit)
    return MessageHistory.model_validate({"agent_id": query.agent_id, "messages": [vars(t) for t in turns]})


@functions_framework.http
@endpoint(auth="user", methods=("POST",), body=CharacterUpdate, response=AgentUpdated)
def update_character(request: Request, caller: Caller, body: CharacterUpdate) -> AgentUpdated:
    """Store a new character version; a running agent restarts with it"""
    warnings = eliza_character.unavailable_plugins(body.character.model_dump(mode="json", exclude_unset=True))
    return AgentUpdated(agent=lifecycle.update_character(caller, body), warnings=warnings)


@functions_framework.http
@endpoint(auth="user", methods=("GET",), query=VersionsQuery, response=VersionList)
def character_versions(request: Request, caller: Caller, query: VersionsQuery) -> VersionList:
    """The versions of the agent's character, oldest first, a page at a time"""
    versions, next_cursor = queries.versions(caller, query.agent_id, limit=query.limit, cursor=query.cursor)
    return VersionList.model_validate({"versions": versions, "next_cursor": next_cursor})


@functions_framework.http
@endpoint(auth="user", methods=("POST",), body=ReleaseRequest, response=ReleaseEnvelope)
def release_version(request: Request, caller: Caller, body: ReleaseRequest) -> ReleaseEnvelope:
    """Release a version blue/green: start it beside the running one, smoke-test it, switch at once"""
    return ReleaseEnvelope(release=releases.release(caller, body))


@functions_framework.http
@endpoint(auth="user", methods=("POST",), body=RollbackRequest, response=ReleaseEnvelope)
def rollback(request: Request, caller: Caller, body: RollbackRequest) -> ReleaseEnvelope:
    """Return to an earlier version: at once while the old instance is kept, else blue/green"""
    return ReleaseEnvelope(release=releases.rollback(caller, body))


@functions_framework.http
@endpoint(auth="user", methods=("GET",), query=ReleasesQuery, response=ReleaseList)
def list_releases(request: Request, caller: Caller, query: ReleasesQuery) -> ReleaseList:
    """The agent's releases and rollbacks, newest first, with their smoke tests"""
    return ReleaseList(releases=releases.list_releases(caller, query.agent_id, query.limit))


@functions_framework.http
@endpoint(auth="user", methods=("POST",), body=ExperimentRequest, response=ExperimentEnvelope)
def run_experiment(request: Request, caller: Caller, body: ExperimentRequest) -> ExperimentEnvelope:
    """A/B test: one test agent per variant plays the scripted cases, is scored, and is deleted"""
    return ExperimentEnvelope(experiment=experiments.run(caller, body))


@functions_framework.http
@endpoint(auth="user", methods=("GET",), query=ExperimentRef, response=ExperimentEnvelope)
def get_experiment(request: Request, caller: Caller, query: ExperimentRef) -> ExperimentEnvelope:
    """One experiment with every variant's score and each case's checks"""
    return ExperimentEnvelope(experiment=experiments.get(caller, query.experiment_id))


@functions_framework.http
@endpoint(auth="user", methods=("GET",), query=ExperimentsQuery, response=ExperimentList)
def list_experiments(request: Request, caller: Caller, query: ExperimentsQuery) -> ExperimentList:
    """The caller's experiments, newest first"""
    return ExperimentList(experiments=experiments.list_all(caller, query.limit))


@functions_framework.http
@endpoint(auth="user", methods=("GET",), query=EventsQuery, response=EventList)
def agent_events(request: Request, caller: Caller, query: EventsQuery) -> EventList:
    """The agent's transitions, newest first, a page at a time (every agent's for the admin without agent_id)"""
    events, next_cursor = queries.events(caller, query.agent_id, query.limit, query.cursor)
    return EventList.model_validate({"events": events, "next_cursor": next_cursor})


@functions_framework.http
@endpoint(auth="user", methods=("GET",), query=LogsQuery, response=LogLines)
def agent_logs(request: Request, caller: Caller, query: LogsQuery) -> LogLines:
    """The last `tail` lines of the agent's log"""
    return LogLines(lines=queries.logs(caller, query.agent_id, query.tail))


@functions_framework.http
@endpoint(auth="user", methods=("POST",), body=PolicyUpdate, response=AgentEnvelope)
def update_policy(request: Request, caller: Caller, body: PolicyUpdate) -> AgentEnvelope:
    """Idle policy and hibernate/wake schedules"""
    return AgentEnvelope(agent=policy.update_policy(caller, body))


@functions_framework.http
@endpoint(auth="admin", methods=("POST",), response=BackupEnvelope, status=201)
def backup_agents(request: Request, caller: Caller) -> BackupEnvelope:
    """Write one archive of every character version"""
    return BackupEnvelope.model_validate({"backup": backup.backup(caller)})


@functions_framework.http
@endpoint(auth="admin", methods=("GET",), query=BackupsQuery, response=BackupList)
def list_backups(request: Request, caller: Caller, query: BackupsQuery) -> BackupList:
    """Backups, newest first, a page at a time"""
    backups, next_cursor = backup.list_backups(caller, limit=query.limit, cursor=query.cursor)
    return BackupList.model_validate({"backups": backups, "next_cursor": next_cursor})


@functions_framework.http
@endpoint(auth="admin", methods=("GET",), query=BackupContentsQuery, response=BackupContents)
def backup_contents(request: Request, caller: Caller, query: BackupContentsQuery) -> BackupContents:
    """What the backup holds beside what exists now, and what a restore would add back"""
    agent_id = str(query.agent_id) if query.agent_id else None
    return BackupContents.model_validate(restore_preview.contents(caller, query.backup_id, agent_id))


@functions_framework.http
@endpoint(auth="admin", methods=("POST",), body=BackupRef, response=RestoreEnvelope)
def restore_backup(request: Request, caller: Caller, body: BackupRef) -> RestoreEnvelope:
    """Restore what an archive has and the database lacks; restored agents come back hibernated"""
    return RestoreEnvelope.model_validate({"restore": backup.restore(caller, body.backup_id)})


@functions_framework.http
@endpoint(auth="admin", methods=("GET", "POST"), query=HealthQuery, response=HealthReport)
def health_check(request: Request, caller: Caller, query: HealthQuery) -> HealthReport:
    """Platform and per-agent health; with repair (the default), restarts agents that should run"""
    return HealthReport.model_validate(health.check(repair=query.repair))


@functions_framework.http
@endpoint(auth="admin", methods=("POST",), response=IdleSweep)
def hibernate_idle(request: Request, caller: Caller) -> IdleSweep:
    """Hibernate agents idle past their policy, finish transitions that got stuck, and apply retention"""
    swept = sweeps.hibernate_idle(caller)
    return IdleSweep.model_validate({**swept, "stuck_finished": sweeps.finish_stuck(caller),
                                     "retention": retention.prune(caller)})


@functions_framework.http
@endpoint(auth="admin", methods=("POST",), response=SyncEnvelope)
def sync_schedules(request: Request, caller: Caller) -> SyncEnvelope:
    """Make the scheduler's jobs match the stored schedules"""
    return SyncEnvelope.model_validate({"sync": scheduler_sync.sync_everything()})


@functions_framework.http
@cors(settings, ("GET",))
def openapi_spec(request: Request) -> flask.Response:
    """The OpenAPI document of every function above"""
    return openapi.response(registry, settings)


# What is made by now (the libraries, the models, the registry) lives as long as the process: frozen,
# the garbage collector does not walk it again. Each full collection walked its 110,000 objects, 50-130
# ms with the interpreter lock held, stalling every thread of the worker (and messages of other
# workers waiting on a lock one of them held). After a fork, frozen objects also stay shared.
gc.freeze()
