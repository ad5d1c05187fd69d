-- Calendar retention for schedules: keep the newest backup of each of the
-- last N hours, days, ISO weeks, months and years that have one (in the
-- schedule's time zone). 0 turns a rule off.

ALTER TABLE hubexport.schedules
    ADD COLUMN IF NOT EXISTS keep_hourly  integer NOT NULL DEFAULT 0 CHECK (keep_hourly >= 0),
    ADD COLUMN IF NOT EXISTS keep_daily   integer NOT NULL DEFAULT 0 CHECK (keep_daily >= 0),
    ADD COLUMN IF NOT EXISTS keep_weekly  integer NOT NULL DEFAULT 0 CHECK (keep_weekly >= 0),
    ADD COLUMN IF NOT EXISTS keep_monthly integer NOT NULL DEFAULT 0 CHECK (keep_monthly >= 0),
    ADD COLUMN IF NOT EXISTS keep_yearly  integer NOT NULL DEFAULT 0 CHECK (keep_yearly >= 0);
