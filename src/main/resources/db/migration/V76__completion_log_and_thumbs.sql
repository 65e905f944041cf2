-- What /v1 answered, so that an app can later say whether an answer was good (the feedback call).
create table completion_log (
    id           varchar(64)  primary key,     -- the completion's id as /v1 returned it (chatcmpl-...)
    model_name   varchar(200) not null,        -- the registry version that answered
    prompt       varchar      not null,        -- the request's messages, as JSON
    completion   varchar      not null,
    created_at   timestamp with time zone not null default current_timestamp
);

-- Thumbs up/down on one answer (KTO's unpaired feedback): from apps through /v1 feedback, keyed
-- by the completion, or from annotators. One verdict per subject; a later one replaces it.
create table thumbs (
    subject       varchar(200) primary key,    -- completion:<id>
    event_id      uuid         not null unique,
    source        varchar(16)  not null,       -- v1 | annotator
    completion_id varchar(64),
    model_name    varchar(200),
    prompt        varchar      not null,       -- the prompt messages, as JSON
    completion    varchar      not null,
    label         boolean      not null,       -- true: desirable (thumbs up)
    author        varchar(200) not null,       -- the API key's name, or the annotator
    submitted_at  timestamp with time zone not null,
    stored_at     timestamp with time zone not null default current_timestamp
);

-- Frozen datasets of kind kto hold thumbs in TRL's unpaired form: prompt, completion, label.
alter table dataset_items add column completion varchar;
alter table dataset_items add column label boolean;
