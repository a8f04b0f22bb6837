-- Every list is read a page at a time in a stable keyset order, (sort key, id), and each order is an
-- index, so a page costs the same on the first page and the hundredth, for 10 agents or 10,000.

-- list_agents: oldest first; the admin's list, a status filter, and a user's own agents (row-level
-- security adds user_id = auth.uid()).
create index agents_page_idx on public.agents (created_at, id);
create index agents_status_page_idx on public.agents (status, created_at, id);
create index agents_user_page_idx on public.agents (user_id, created_at, id);
drop index public.agents_user_id_idx;  -- agents_user_page_idx begins with user_id and serves its lookups

-- agent_events: newest first, for one agent or every agent (the admin). The retention sweep walks
-- the same indexes from the other end.
create index agent_events_agent_page_idx on public.agent_events (agent_id, at desc, id desc);
create index agent_events_page_idx on public.agent_events (at desc, id desc);
drop index public.agent_events_agent_at_idx;
drop index public.agent_events_at_idx;

-- list_backups: newest first. character_versions pages by its primary key (character_id, version).
create index backups_page_idx on public.backups (created_at desc, id desc);

-- Events stay append-only for everyone, except the platform's retention sweep, which says so for
-- its own transaction (paradyze.retention = on) and deletes only as service_role: users hold no
-- delete privilege on the table.
create or replace function public.forbid_event_change() returns trigger
  language plpgsql set search_path = '' as $$
begin
  if tg_op = 'DELETE' and current_setting('paradyze.retention', true) = 'on' then
    return old;
  end if;
  raise exception 'agent_events is append-only' using errcode = 'check_violation';
end
$$;
grant delete on public.agent_events to service_role;
