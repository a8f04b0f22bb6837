-- The platform's own bookkeeping for per-user limits and admin token revocation. Every function
-- instance shares these rows, so a limit holds however far Cloud Run scales out. Only the service
-- role (the platform) reads or writes them: nothing is granted to anon or authenticated, and a
-- restrictive row-level policy shows them no row even if a privilege were granted by mistake.

-- Request rates per user and action, as a generic cell rate algorithm: tat ("theoretical arrival
-- time") moves forward by period/limit per request, and a request is refused while tat would end
-- up more than one period ahead of now.
create table public.user_rate_limits (
  user_id uuid not null,
  action  text not null check (action in ('create_agent', 'send_message')),
  tat     timestamptz not null,
  primary key (user_id, action)
);

-- One row per operation in flight. A row expires on its own, so an instance that dies mid-request
-- only holds its slot until expires_at.
create table public.user_operations (
  id         uuid primary key default gen_random_uuid(),
  user_id    uuid not null,
  started_at timestamptz not null default now(),
  expires_at timestamptz not null
);
create index user_operations_user_id_idx on public.user_operations (user_id, expires_at);

-- Admin tokens carry the generation they were minted under; revoking every admin token moves it on.
create table public.admin_token_generation (
  singleton  boolean primary key default true check (singleton),
  generation integer not null default 1 check (generation >= 1),
  revoked_at timestamptz
);
insert into public.admin_token_generation (singleton, generation) values (true, 1);

alter table public.user_rate_limits enable row level security;
alter table public.user_operations enable row level security;
alter table public.admin_token_generation enable row level security;

-- Tables only the platform touches say so, rather than relying on the absence of a policy.
create policy "only the platform" on public.user_rate_limits
  as restrictive for all to anon, authenticated using (false) with check (false);
create policy "only the platform" on public.user_operations
  as restrictive for all to anon, authenticated using (false) with check (false);
create policy "only the platform" on public.admin_token_generation
  as restrictive for all to anon, authenticated using (false) with check (false);

-- Supabase's default privileges would give every role everything on a new table: take it all back and
-- grant the service role only the statements the platform runs.
revoke all on public.user_rate_limits, public.user_operations, public.admin_token_generation
  from public, anon, authenticated, service_role;
grant select, insert, update, delete on public.user_rate_limits, public.user_operations to service_role;
grant select, update on public.admin_token_generation to service_role;
