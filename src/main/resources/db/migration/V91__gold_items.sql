-- Gold items: comparisons with a known answer, mixed into annotators' queues at a set rate
-- (prefloop.gold.rate) and kept out of datasets. An annotator whose gold accuracy since their last
-- resume falls below prefloop.gold.pause-below (after prefloop.gold.min-answers gold answers) is
-- paused: the queue gives them nothing until an admin resumes them.
create table gold_answers (
    comparison_id  bigint       primary key references comparisons (id),
    choice         varchar(16)  not null,   -- A | B | tie | both_bad, in the comparison's own order
    created_by     varchar(64)  not null,
    created_at     timestamp with time zone not null default current_timestamp
);

create table annotator_pauses (
    annotator   varchar(64)  primary key,
    paused_at   timestamp with time zone,  -- null: not paused
    reason      varchar(400),
    resumed_at  timestamp with time zone,  -- gold accuracy counts from here
    resumed_by  varchar(64)
);
