-- Each agent's conversations, as the platform delivered them: one row per message sent and per reply.
--
-- The console and any client show an agent's history from here, so it survives a reload and reads the
-- same in every tab. A conversation is one (agent, sender) pair, as the agent itself keeps it: the
-- sender is the user who wrote, or the platform's admin. Rows go with their agent when it is deleted.
create table public.agent_messages (
  id        bigint generated always as identity primary key,
  agent_id  uuid not null references public.agents (id) on delete cascade,
  user_id   uuid not null,  -- the agent's owner, for row-level security
  sender    text not null,  -- who the conversation is with: a user id, or "admin"
  role      text not null check (role in ('user', 'agent')),
  text      text not null,
  at        timestamptz not null default now()
);
create index agent_messages_conversation_idx on public.agent_messages (agent_id, sender, id desc);

alter table public.agent_messages enable row level security;

-- Users read their own agents' messages; only the platform (service_role) writes them.
grant select on public.agent_messages to authenticated;
grant select, insert, delete on public.agent_messages to service_role;
create policy "owners read their agents' messages" on public.agent_messages
  for select to authenticated using ((select auth.uid()) = user_id);
