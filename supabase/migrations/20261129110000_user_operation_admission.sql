-- A request's per-user limits in one statement: a slot among the user's requests in flight and,
-- for a rate-limited action, one call counted against its rate (the generic cell rate algorithm of
-- public.user_rate_limits). send_message runs it in the transaction that reads the agent, so a
-- message to a running agent makes one round of reads and one write (which gives the slot back).
--
-- Under the user's advisory lock (the key quotas use too), expired slots are dropped and the rest
-- counted; when the user is at p_concurrency nothing is counted or taken. A call past the rate
-- takes no slot. The answer is one row: operation_id (null when refused), in_flight (the user's
-- slots before this one) and rate_wait (seconds until a call would be admitted; null unless refused
-- for the rate). Each statement of a volatile function sees what committed before it, so the count
-- after the lock sees every slot taken under it.
create function public.begin_user_operation(
  p_user text, p_concurrency integer, p_lease interval,
  p_action text default null, p_rate integer default null, p_period interval default null)
returns table (operation_id uuid, in_flight integer, rate_wait double precision)
language plpgsql volatile
set search_path = ''
as $$
declare
  v_step interval;
  v_tat timestamptz;
begin
  perform pg_advisory_xact_lock(hashtextextended('paradyze.user:' || p_user, 0));
  delete from public.user_operations o where o.user_id = p_user::uuid and o.expires_at < now();
  select count(*) into in_flight from public.user_operations o where o.user_id = p_user::uuid;
  if in_flight >= p_concurrency then
    return next;
    return;
  end if;
  if p_action is not null then
    v_step := p_period / p_rate;
    insert into public.user_rate_limits as r (user_id, action, tat)
      values (p_user::uuid, p_action, now() + v_step)
      on conflict (user_id, action) do update set tat = greatest(r.tat, now()) + v_step
        where greatest(r.tat, now()) + v_step <= now() + p_period
      returning r.tat into v_tat;
    if v_tat is null then
      select greatest(0, extract(epoch from (r.tat + v_step - p_period - now())))::float8 into rate_wait
        from public.user_rate_limits r where r.user_id = p_user::uuid and r.action = p_action;
      rate_wait := coalesce(rate_wait, 0);
      return next;
      return;
    end if;
  end if;
  insert into public.user_operations as o (user_id, expires_at) values (p_user::uuid, now() + p_lease)
    returning o.id into operation_id;
  return next;
end
$$;

-- The platform's alone, as the tables it writes.
revoke all on function public.begin_user_operation(text, integer, interval, text, integer, interval)
  from public, anon, authenticated;
grant execute on function public.begin_user_operation(text, integer, interval, text, integer, interval)
  to service_role;
