-- Least privilege for the Data API roles.
--
-- Supabase's default privileges grant ALL on every table, sequence and function in public to anon,
-- authenticated and service_role, so the initial migration's grants only added to that and RLS was
-- the only barrier: a user could point their agent at another user's character, set its status,
-- url or runtime_handle, write versions, secrets, schedules and events, and TRUNCATE (which RLS does
-- not govern) any table; anon could too.
--
-- From here on:
--   * anon has no privilege on any table, sequence or function in public;
--   * authenticated reads its own rows and updates only the columns a user owns (an agent's name
--     and hibernation policy); every other write is the platform's, made as service_role after the
--     platform has read the row as the user under RLS;
--   * every write policy checks the ownership of each row the row refers to;
--   * functions have a fixed search_path and are executable by nobody but the platform.

-- 1. Start from nothing, now and for objects later migrations create.
revoke all on all tables in schema public from anon, authenticated;
revoke all on all sequences in schema public from anon, authenticated;
revoke all on all functions in schema public from public, anon, authenticated;
alter default privileges in schema public revoke all on tables from anon, authenticated;
alter default privileges in schema public revoke all on sequences from anon, authenticated;
alter default privileges in schema public revoke all on functions from anon, authenticated;
-- Postgres itself lets PUBLIC execute every new function; per-schema defaults cannot take that back.
alter default privileges revoke execute on functions from public;

-- The platform keeps what it was granted, except TRUNCATE, which no request needs and RLS does not
-- govern (nor REFERENCES or TRIGGER, which only schema changes need).
revoke truncate, references, trigger on all tables in schema public from service_role;
alter default privileges in schema public revoke truncate, references, trigger on tables from service_role;

-- 2. What a user may do through the Data API.
grant select on public.characters, public.character_versions, public.agents, public.agent_events,
  public.agent_schedules to authenticated;
grant update (name, idle_timeout_minutes, auto_hibernate) on public.agents to authenticated;

-- 3. Policies that match those grants and nothing more. The writes users no longer make lose their
-- policies, so a grant added by mistake later opens nothing by itself.
drop policy if exists "owners create their characters" on public.characters;
drop policy if exists "owners update their characters" on public.characters;
drop policy if exists "owners delete their characters" on public.characters;
drop policy if exists "owners add versions to their characters" on public.character_versions;
drop policy if exists "owners write their secrets" on public.character_secrets;
drop policy if exists "owners replace their secrets" on public.character_secrets;
drop policy if exists "owners create their agents" on public.agents;
drop policy if exists "owners update their agents" on public.agents;
drop policy if exists "owners delete their agents" on public.agents;
drop policy if exists "owners record events of their agents" on public.agent_events;
drop policy if exists "owners read their schedules" on public.agent_schedules;
drop policy if exists "owners write their schedules" on public.agent_schedules;

-- An agent is updated only by its owner, and only while it still refers to a character of theirs.
drop policy if exists "owners update their agents" on public.agents;
create policy "owners update their agents" on public.agents
  for update to authenticated
  using ((select auth.uid()) = user_id)
  with check (
    (select auth.uid()) = user_id
    and exists (select 1 from public.characters c where c.id = character_id and c.user_id = (select auth.uid()))
  );

-- A schedule is seen only by the owner of the agent it belongs to, not merely by the user it names.
drop policy if exists "owners read their agents' schedules" on public.agent_schedules;
create policy "owners read their agents' schedules" on public.agent_schedules
  for select to authenticated
  using (
    (select auth.uid()) = user_id
    and exists (select 1 from public.agents a where a.id = agent_id and a.user_id = (select auth.uid()))
  );

-- Tables only the platform touches say so, rather than relying on the absence of a policy.
do $$
declare
  t text;
begin
  foreach t in array array['character_secrets', 'backups', 'user_rate_limits', 'user_operations',
                           'admin_token_generation'] loop
    execute format('drop policy if exists "only the platform" on public.%I', t);
    execute format('create policy "only the platform" on public.%I as restrictive for all to anon, authenticated'
                   ' using (false) with check (false)', t);
  end loop;
end
$$;

-- 4. Functions: a fixed, empty search_path (every name in them is qualified), executed only by
-- the triggers that use them.
alter function public.forbid_version_update() set search_path = '';
alter function public.forbid_event_change() set search_path = '';
