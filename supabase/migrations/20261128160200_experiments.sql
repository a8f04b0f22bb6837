-- A/B experiments: variants of a base character, each run as a test agent against scripted
-- conversations, scored, and kept here with their results after the test agents are deleted.

create table public.experiments (
  id           uuid primary key default gen_random_uuid(),
  user_id      uuid not null,
  name         text not null check (length(name) between 1 and 200),
  -- running: test agents being created and talked to; done: scored; failed: see error.
  status       text not null check (status in ('running', 'done', 'failed')),
  base         jsonb not null,
  variants     jsonb not null,
  test_cases   jsonb not null,
  agent_ids    uuid[] not null default '{}',
  results      jsonb not null default '[]',
  best         text,
  error        text,
  actor        text not null,
  created_at   timestamptz not null default now(),
  finished_at  timestamptz
);
create index experiments_user_idx on public.experiments (user_id, created_at desc);

alter table public.experiments enable row level security;
create policy "owners read their experiments" on public.experiments
  for select to authenticated using ((select auth.uid()) = user_id);
grant select on public.experiments to authenticated;
grant select, insert, update, delete on public.experiments to service_role;
