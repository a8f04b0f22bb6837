-- Blue/green releases of character versions, recorded step by step.
--
-- An agent runs as one of two runtime identities, its own id or its twin (slots.py): a release
-- starts the new version (green) as the identity that is not serving (blue), tests it, and switches
-- the agent's row to it in one transaction. agents.instance_id says which identity serves (null:
-- the agent's own id); agent_releases records each step, so a crash at any step is finished or
-- rolled back by reconcile with exactly one instance serving, and the record says which.

alter table public.agents add column instance_id uuid;

create table public.agent_releases (
  id             uuid primary key default gen_random_uuid(),
  agent_id       uuid not null references public.agents (id) on delete cascade,
  user_id        uuid not null,
  kind           text not null check (kind in ('release', 'rollback')),
  from_version   integer,
  to_version     integer not null check (to_version >= 1),
  -- starting: recorded, green being started; testing: green recorded, smoke test running;
  -- switched: green serves, blue kept for the grace period; done: blue stopped;
  -- failed: the smoke test failed, blue serves; rolled_back: interrupted or undone, blue serves.
  status         text not null check (status in ('starting', 'testing', 'switched', 'done', 'failed', 'rolled_back')),
  serving        text not null check (serving in ('blue', 'green')),
  reason         text,
  blue_instance  uuid,
  blue_handle    text,
  blue_url       text,
  green_instance uuid,
  green_handle   text,
  green_url      text,
  smoke          jsonb not null default '[]',
  grace_seconds  integer not null default 60 check (grace_seconds between 0 and 86400),
  keep_until     timestamptz,
  actor          text not null,
  created_at     timestamptz not null default now(),
  updated_at     timestamptz not null default now(),
  finished_at    timestamptz
);
create index agent_releases_agent_idx on public.agent_releases (agent_id, created_at desc);
-- One release at a time per agent (the agent's lock serialises them; this says so in the schema).
create unique index agent_releases_one_open_idx on public.agent_releases (agent_id)
  where status in ('starting', 'testing', 'switched');

alter table public.agent_releases enable row level security;
create policy "owners read their agents' releases" on public.agent_releases
  for select to authenticated
  using (
    (select auth.uid()) = user_id
    and exists (select 1 from public.agents a where a.id = agent_id and a.user_id = (select auth.uid()))
  );
grant select on public.agent_releases to authenticated;
grant select, insert, update, delete on public.agent_releases to service_role;
