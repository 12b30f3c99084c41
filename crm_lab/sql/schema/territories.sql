-- Sales territories with a geographic centre.
-- key: company_id, territory_id
CREATE TABLE IF NOT EXISTS territories (
    company_id      VARCHAR NOT NULL,
    territory_id    VARCHAR NOT NULL,
    name            VARCHAR,
    region          VARCHAR,
    center_lat      DOUBLE,
    center_lon      DOUBLE
);
