-- Catalogue of what is sold.
-- key: company_id, product_id
CREATE TABLE IF NOT EXISTS products (
    company_id      VARCHAR NOT NULL,
    product_id      VARCHAR NOT NULL,
    name            VARCHAR,
    family          VARCHAR,
    list_price      DECIMAL(18, 2)
);
