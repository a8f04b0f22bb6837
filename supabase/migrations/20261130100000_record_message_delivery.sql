-- A message's one write, as one call: count the messages to and from the agent and stamp its
-- activity, append the (role, text) turns to the (agent, sender) conversation in their order, and
-- give the request slot back. It is a function so that the call is one short statement, sent with
-- the platform's role in one simple query (one round trip), while the plans of the statements
-- inside are kept by each connection, as plpgsql keeps them, instead of planned on every message.

create function public.record_message_delivery(
  p_agent uuid, p_count integer, p_owner uuid, p_sender text, p_roles text[], p_texts text[], p_slot uuid)
returns void
language plpgsql volatile
set search_path = ''
as $$
begin
  update public.agents a set last_activity_at = greatest(a.last_activity_at, now()),
    message_count = a.message_count + p_count
    where a.id = p_agent;
  insert into public.agent_messages (agent_id, user_id, sender, role, text)
    select p_agent, p_owner, p_sender, t.role, t.text
      from unnest(p_roles, p_texts) with ordinality as t(role, text, n)
      order by t.n;
  if p_slot is not null then
    delete from public.user_operations o where o.id = p_slot;
  end if;
end
$$;

-- The platform's alone, as the tables it writes.
revoke all on function public.record_message_delivery(uuid, integer, uuid, text, text[], text[], uuid)
  from public, anon, authenticated;
grant execute on function public.record_message_delivery(uuid, integer, uuid, text, text[], text[], uuid)
  to service_role;
