-- How much better an A or B verdict is, and the per-criterion verdicts a project asks for, kept raw
-- beside the overall verdict. A frozen preference pair carries the margin they give (TRL's `margin`).
alter table preferences add column strength varchar(16);   -- much_better | better | slightly_better
alter table preferences add column criteria varchar(4000);  -- {"criterion": "A" | "B" | "tie" | "both_bad", ...}
alter table dataset_items add column margin double precision;
