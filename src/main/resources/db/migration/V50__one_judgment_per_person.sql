-- One judgment per person (or judge) per comparison, enforced by the store.
--
-- judgment_claims: the web role claims (comparison, annotator) for one event id before it hands the
-- judgment to Kafka, so concurrent posts by one person with different event ids cannot all pass; a
-- retry with the claimed event id passes again. The ingest consumer's unique key on preferences
-- then absorbs anything that reached the topic another way.
create table judgment_claims (
    comparison_id  bigint      not null references comparisons (id),
    annotator      varchar(64) not null,
    event_id       uuid        not null,
    claimed_at     timestamp with time zone not null default current_timestamp,
    primary key (comparison_id, annotator)
);

-- Earlier duplicates (several event ids by one person on one comparison): the first one stays.
delete from preferences p where exists (
    select 1 from preferences q where q.comparison_id = p.comparison_id and q.annotator = p.annotator and q.id < p.id);

insert into judgment_claims (comparison_id, annotator, event_id)
    select comparison_id, annotator, event_id from preferences;

alter table preferences add constraint preferences_one_per_person unique (comparison_id, annotator);
