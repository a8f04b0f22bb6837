-- list_agents' `q` filter, served by an index: the words of an agent's name, each found by its
-- beginning ("tru" finds "Trump Bot", "3po" and "c 3" find "C-3PO"). The name is cut into its runs
-- of letters and digits first, so that "eliza.os" is the words "eliza" and "os", as a query's words
-- are cut (functions/paradyze/repository.py: _name_words). The 'simple' configuration lowercases
-- and keeps every word: names are not prose, so no stemming and no stop words.
--
-- Substring search would need pg_trgm, which the embedded Postgres of a local run does not ship.
create index agents_name_words_idx on public.agents
  using gin (to_tsvector('simple', regexp_replace(name, '[^[:alnum:]]+', ' ', 'g')));
