-- Semantic versions of characters.
--
-- Every version carries a semantic version (major.minor.patch) beside its number. The first is
-- 1.0.0; each later one bumps the character's newest semantic version by the change the user named
-- (update_character's "change") or, when none was named, by the change this rule reads off the
-- difference from the newest version:
--   major: a new name, or other plugins, clients or modelProvider (what the agent is and can do);
--   minor: other examples (messageExamples, postExamples), knowledge or topics;
--   patch: anything else (wording of the bio, lore, style, system prompt...), or nothing at all.
-- Versions stay immutable: the semantic version is set once, when the row is inserted.

alter table public.character_versions
  add column semver text check (semver ~ '^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)$'),
  add column change text check (change in ('initial', 'major', 'minor', 'patch'));

create function public.character_change(before jsonb, after jsonb) returns text
  language sql immutable set search_path = '' as $$
  select case
    when before->'name' is distinct from after->'name'
      or coalesce(before->'plugins', '[]') is distinct from coalesce(after->'plugins', '[]')
      or coalesce(before->'clients', '[]') is distinct from coalesce(after->'clients', '[]')
      or before->'modelProvider' is distinct from after->'modelProvider' then 'major'
    when coalesce(before->'messageExamples', '[]') is distinct from coalesce(after->'messageExamples', '[]')
      or coalesce(before->'postExamples', '[]') is distinct from coalesce(after->'postExamples', '[]')
      or coalesce(before->'knowledge', '[]') is distinct from coalesce(after->'knowledge', '[]')
      or coalesce(before->'topics', '[]') is distinct from coalesce(after->'topics', '[]') then 'minor'
    else 'patch'
  end
$$;

create function public.bump_semver(semver text, change text) returns text
  language sql immutable set search_path = '' as $$
  select case change
    when 'major' then (parts[1] + 1) || '.0.0'
    when 'minor' then parts[1] || '.' || (parts[2] + 1) || '.0'
    else parts[1] || '.' || parts[2] || '.' || (parts[3] + 1)
  end
  from (select string_to_array(semver, '.')::int[] as parts) p
$$;

-- The newest version of the character (by number) is what the new one is compared with and bumps,
-- so semantic versions grow with version numbers and never repeat, whichever version is released.
create function public.set_version_semver() returns trigger
  language plpgsql set search_path = '' as $$
declare
  newest record;
begin
  if new.semver is not null then
    return new;  -- given (a restore of a backup that carries them)
  end if;
  select v.semver, v.config into newest from public.character_versions v
   where v.character_id = new.character_id and v.version < new.version
   order by v.version desc limit 1;
  if not found then
    new.semver := '1.0.0';
    new.change := 'initial';
  else
    new.change := coalesce(new.change, public.character_change(newest.config, new.config));
    new.semver := public.bump_semver(newest.semver, new.change);
  end if;
  return new;
end
$$;
create trigger character_versions_semver before insert on public.character_versions
  for each row execute function public.set_version_semver();

-- Existing versions get theirs by the same rule, oldest first (the immutability trigger is off
-- only for this one backfill).
alter table public.character_versions disable trigger character_versions_immutable;
do $$
declare
  v record;
  newest record;
begin
  for v in select character_id, version, config from public.character_versions order by character_id, version loop
    select p.semver, p.config into newest from public.character_versions p
     where p.character_id = v.character_id and p.version < v.version order by p.version desc limit 1;
    if not found then
      update public.character_versions set semver = '1.0.0', change = 'initial'
       where character_id = v.character_id and version = v.version;
    else
      update public.character_versions
         set change = public.character_change(newest.config, v.config),
             semver = public.bump_semver(newest.semver, public.character_change(newest.config, v.config))
       where character_id = v.character_id and version = v.version;
    end if;
  end loop;
end
$$;
alter table public.character_versions enable trigger character_versions_immutable;

alter table public.character_versions alter column semver set not null;
alter table public.character_versions add constraint character_versions_semver_key unique (character_id, semver);

revoke all on function public.character_change(jsonb, jsonb), public.bump_semver(text, text),
  public.set_version_semver() from public, anon, authenticated;
