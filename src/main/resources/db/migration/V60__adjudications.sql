-- An admin's verdict on a comparison the annotators split on (console, disagreement review). Kept
-- beside the votes, never instead of them: datasets can prefer it over the vote.
create table adjudications (
    comparison_id   bigint       primary key references comparisons (id),
    choice          varchar(16)  not null,   -- A | B | tie | both_bad, in the comparison's own order
    note            varchar(4000),
    adjudicated_by  varchar(64)  not null,
    adjudicated_at  timestamp with time zone not null default current_timestamp
);
