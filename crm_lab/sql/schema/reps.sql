-- Sales reps: skill in [0, 1], annual quota, capacity in working hours per year, home location.
-- key: company_id, rep_id
CREATE TABLE IF NOT EXISTS reps (
    company_id      VARCHAR NOT NULL,
    rep_id          VARCHAR NOT NULL,
    name            VARCHAR,
    email           VARCHAR,
    team            VARCHAR,
    territory_id    VARCHAR,
    role            VARCHAR,
    skill           DOUBLE,
    quota           DECIMAL(18, 2),
    capacity_hours  DOUBLE,
    fte             DOUBLE,
    home_lat        DOUBLE,
    home_lon        DOUBLE,
    hired_at        DATE,
    is_active       BOOLEAN
);
