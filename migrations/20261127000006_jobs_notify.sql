-- New jobs wake the relays at once: a statement that inserts jobs sends
-- one notification on 'canopy_jobs', delivered when its transaction
-- commits (a rolled-back change wakes no one). Relays still look on a
-- timer too, so a notification missed while reconnecting loses nothing.
CREATE FUNCTION canopy_jobs_notify() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('canopy_jobs', '');
    RETURN NULL;
END
$$;

CREATE TRIGGER jobs_notify AFTER INSERT ON jobs
    FOR EACH STATEMENT EXECUTE FUNCTION canopy_jobs_notify();
