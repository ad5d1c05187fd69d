-- A schedule's own backup encryption. encrypt asks for age encryption;
-- age_recipients are the schedule's own public keys. The server's
-- BACKUP_AGE_RECIPIENTS are always added, and make encryption required.
ALTER TABLE hubexport.schedules ADD COLUMN IF NOT EXISTS encrypt boolean NOT NULL DEFAULT false;
ALTER TABLE hubexport.schedules ADD COLUMN IF NOT EXISTS age_recipients text[] NOT NULL DEFAULT '{}';
