-- Paradyze V2: characters (immutable versions), agents, their event log, secrets and backups.
-- Runs unchanged on Supabase and on a plain Postgres that has been given Supabase's auth schema and roles.

create table public.characters (
  id              uuid primary key default gen_random_uuid(),
  user_id         uuid not null,
  name            text not null check (length(name) between 1 and 200),
  current_version integer not null default 0 check (current_version >= 0),
  created_at      timestamptz not null default now(),
  updated_at      timestamptz not null default now()
);
create index characters_user_id_idx on public.characters (user_id);

create table public.character_versions (
  character_id uuid not null references public.characters (id) on delete cascade,
  version      integer not null check (version >= 1),
  user_id      uuid not null,
  config       jsonb not null,
  sha256       text not null check (sha256 ~ '^[0-9a-f]{64}$'),
  storage_uri  text not null,
  created_at   timestamptz not null default now(),
  primary key (character_id, version)
);
create index character_versions_user_id_idx on public.character_versions (user_id);

-- A version is immutable: it can go with its character, never change.
create function public.forbid_version_update() returns trigger language plpgsql as $$
begin
  raise exception 'character versions are immutable (character %, version %)', old.character_id, old.version
    using errcode = 'check_violation';
end
$$;
create trigger character_versions_immutable before update on public.character_versions
  for each row execute function public.forbid_version_update();

-- settings.secrets of a character, encrypted, kept apart from every version. Users may write their own
-- but never read them back: only the service role (the platform starting the agent) can.
create table public.character_secrets (
  character_id uuid primary key references public.characters (id) on delete cascade,
  user_id      uuid not null,
  names        text[] not null default '{}',
  ciphertext   text not null,
  updated_at   timestamptz not null default now()
);

create table public.agents (
  id                   uuid primary key default gen_random_uuid(),
  user_id              uuid not null,
  character_id         uuid not null references public.characters (id) on delete cascade,
  name                 text not null,
  runtime              text not null check (runtime in ('process', 'docker', 'cloud_run')),
  runtime_handle       text,
  url                  text,
  eliza_agent_id       text,
  status               text not null default 'provisioning' check (status in
                         ('provisioning', 'running', 'hibernating', 'hibernated', 'waking', 'error', 'deleting')),
  desired_state        text not null default 'running' check (desired_state in ('running', 'hibernated', 'deleted')),
  status_reason        text,
  running_version      integer,
  transition_started_at timestamptz,
  last_activity_at     timestamptz not null default now(),
  restart_count        integer not null default 0,
  message_count        bigint not null default 0,
  inflight_messages    integer not null default 0 check (inflight_messages >= 0),
  crash_times          timestamptz[] not null default '{}',
  idle_timeout_minutes integer not null default 60 check (idle_timeout_minutes between 1 and 525600),
  auto_hibernate       boolean not null default true,
  started_at           timestamptz,
  idempotency_key      text,
  request_sha256       text,
  created_at           timestamptz not null default now(),
  updated_at           timestamptz not null default now(),
  unique (user_id, idempotency_key)
);
create index agents_user_id_idx on public.agents (user_id);
create index agents_character_id_idx on public.agents (character_id);
-- The idle sweep's one query: running agents that may hibernate, oldest activity first.
create index agents_idle_sweep_idx on public.agents (last_activity_at)
  where status = 'running' and auto_hibernate;
create index agents_transitional_idx on public.agents (transition_started_at)
  where status in ('provisioning', 'hibernating', 'waking', 'deleting');

-- Append-only: every transition, who caused it and why. Kept after an agent is deleted.
create table public.agent_events (
  id          bigint generated always as identity primary key,
  agent_id    uuid not null,
  user_id     uuid not null,
  at          timestamptz not null default now(),
  from_status text,
  to_status   text,
  actor       text not null,
  reason      text not null,
  duration_ms integer,
  details     jsonb not null default '{}'
);
create index agent_events_agent_at_idx on public.agent_events (agent_id, at desc);
create index agent_events_at_idx on public.agent_events (at desc);

create function public.forbid_event_change() returns trigger language plpgsql as $$
begin
  raise exception 'agent_events is append-only' using errcode = 'check_violation';
end
$$;
create trigger agent_events_append_only before update or delete on public.agent_events
  for each row execute function public.forbid_event_change();

create table public.agent_schedules (
  id         uuid primary key default gen_random_uuid(),
  agent_id   uuid not null references public.agents (id) on delete cascade,
  user_id    uuid not null,
  action     text not null check (action in ('hibernate', 'wake')),
  cron       text not null,
  timezone   text not null default 'UTC',
  enabled    boolean not null default true,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  unique (agent_id, action)
);

-- Platform-wide archives; only the service role sees them.
create table public.backups (
  id          uuid primary key default gen_random_uuid(),
  location    text not null,
  sha256      text not null,
  size_bytes  bigint not null,
  characters  integer not null,
  versions    integer not null,
  agents      integer not null,
  manifest    jsonb not null,
  created_by  text not null,
  created_at  timestamptz not null default now()
);

-- Row-level security, as Supabase recommends it: (select auth.uid()) is evaluated once per query.
alter table public.characters enable row level security;
alter table public.character_versions enable row level security;
alter table public.character_secrets enable row level security;
alter table public.agents enable row level security;
alter table public.agent_events enable row level security;
alter table public.agent_schedules enable row level security;
alter table public.backups enable row level security;

create policy "owners read their characters" on public.characters
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "owners create their characters" on public.characters
  for insert to authenticated with check ((select auth.uid()) = user_id);
create policy "owners update their characters" on public.characters
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create policy "owners delete their characters" on public.characters
  for delete to authenticated using ((select auth.uid()) = user_id);

create policy "owners read their versions" on public.character_versions
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "owners add versions to their characters" on public.character_versions
  for insert to authenticated with check (
    (select auth.uid()) = user_id
    and exists (select 1 from public.characters c where c.id = character_id and c.user_id = (select auth.uid()))
  );

create policy "owners write their secrets" on public.character_secrets
  for insert to authenticated with check ((select auth.uid()) = user_id);
create policy "owners replace their secrets" on public.character_secrets
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

create policy "owners read their agents" on public.agents
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "owners create their agents" on public.agents
  for insert to authenticated with check (
    (select auth.uid()) = user_id
    and exists (select 1 from public.characters c where c.id = character_id and c.user_id = (select auth.uid()))
  );
create policy "owners update their agents" on public.agents
  for update to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create policy "owners delete their agents" on public.agents
  for delete to authenticated using ((select auth.uid()) = user_id);

create policy "owners read their agents' events" on public.agent_events
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "owners record events of their agents" on public.agent_events
  for insert to authenticated with check ((select auth.uid()) = user_id);

create policy "owners read their schedules" on public.agent_schedules
  for select to authenticated using ((select auth.uid()) = user_id);
create policy "owners write their schedules" on public.agent_schedules
  for all to authenticated using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);

-- Supabase grants these through default privileges; say it here so a plain Postgres agrees.
grant usage on schema public to anon, authenticated, service_role;
grant select, insert, update, delete on public.characters, public.character_versions, public.agents,
  public.agent_schedules to authenticated, service_role;
grant insert, update on public.character_secrets to authenticated;
grant select, insert, update, delete on public.character_secrets to service_role;
grant select, insert on public.agent_events to authenticated, service_role;
grant select, insert, update, delete on public.backups to service_role;
grant usage, select on all sequences in schema public to authenticated, service_role;
