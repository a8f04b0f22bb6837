-- What Supabase provides before any project migration runs, created on a plain Postgres only where it
-- is missing, so that supabase/migrations/ runs unchanged on the embedded server, docker-compose and
-- Supabase, and so that the tests see the privileges production has.
--
-- Reproduced from supabase/postgres (migrations/db/init-scripts/00000000000000-initial-schema.sql, run
-- as `postgres`, and the later migrations 20230529180330_alter_api_roles_for_inherit,
-- 20230201083204_grant_auth_roles_to_postgres, 20221028101028_set_authenticator_timeout,
-- 20231130133139_set_lock_timeout_to_authenticator_role):
--   * the API roles anon, authenticated (nologin) and service_role (nologin, bypassrls), inherit;
--   * authenticator, the role PostgREST logs in as, a member of the three API roles;
--   * usage on schema public for the API roles;
--   * default privileges that grant ALL on every new table, sequence and function in public to
--     anon, authenticated and service_role. That last one is why a table created by a migration is
--     readable and writable by anon unless the migration revokes it.
-- Everything runs only when the role or function is absent: on a real Supabase it does nothing.
do $$
declare
  -- A database Supabase did not set up has no auth.uid(); default privileges belong to a database.
  fresh boolean := to_regprocedure('auth.uid()') is null;
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin inherit;
    alter role anon set statement_timeout = '3s';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin inherit;
    alter role authenticated set statement_timeout = '8s';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin inherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    -- Supabase gives it a password and LOGIN; here nobody logs in as it, so it cannot log in.
    create role authenticator nologin noinherit;
    alter role authenticator set statement_timeout = '8s';
    alter role authenticator set lock_timeout = '8s';
  end if;
  grant anon, authenticated, service_role to authenticator;

  if fresh then
    -- Supabase's default privileges, for objects the migrating role creates in public.
    grant usage on schema public to anon, authenticated, service_role;
    alter default privileges in schema public grant all on tables to anon, authenticated, service_role;
    alter default privileges in schema public grant all on functions to anon, authenticated, service_role;
    alter default privileges in schema public grant all on sequences to anon, authenticated, service_role;
    if exists (select 1 from pg_roles where rolname = 'postgres') then
      grant usage on schema public to postgres;
      alter default privileges in schema public grant all on tables to postgres;
      alter default privileges in schema public grant all on functions to postgres;
      alter default privileges in schema public grant all on sequences to postgres;
    end if;
  end if;
end
$$;

-- The connecting role switches to these with SET ROLE, as PostgREST does on Supabase (where
-- `postgres` is granted them too).
grant anon, authenticated, service_role to current_user;

create schema if not exists auth;
grant usage on schema auth to anon, authenticated, service_role;

do $$
begin
  if to_regprocedure('auth.uid()') is null then
    create function auth.uid() returns uuid language sql stable as $f$
      select coalesce(
        nullif(current_setting('request.jwt.claim.sub', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')
      )::uuid
    $f$;
  end if;
  if to_regprocedure('auth.role()') is null then
    create function auth.role() returns text language sql stable as $f$
      select coalesce(
        nullif(current_setting('request.jwt.claim.role', true), ''),
        (nullif(current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')
      )::text
    $f$;
  end if;
  if to_regprocedure('auth.jwt()') is null then
    create function auth.jwt() returns jsonb language sql stable as $f$
      select coalesce(
        nullif(current_setting('request.jwt.claim', true), ''),
        nullif(current_setting('request.jwt.claims', true), '')
      )::jsonb
    $f$;
  end if;
end
$$;
