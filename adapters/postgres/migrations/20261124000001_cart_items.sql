-- One row per (user, product): the unique key that makes concurrent adds one atomic upsert.
CREATE TABLE IF NOT EXISTS cart_items (
    user_id            UUID        NOT NULL,
    product_id         UUID        NOT NULL,
    quantity           INTEGER     NOT NULL CHECK (quantity BETWEEN 1 AND 999),
    name               TEXT        NOT NULL,
    image_url          TEXT,
    price_cents        BIGINT      NOT NULL CHECK (price_cents >= 0),
    price_at_add_cents BIGINT      NOT NULL CHECK (price_at_add_cents >= 0),
    product_version    BIGINT      NOT NULL,
    added_at           TIMESTAMPTZ NOT NULL,
    seq                BIGSERIAL   NOT NULL,
    PRIMARY KEY (user_id, product_id)
);

-- Events touch every line of one product.
CREATE INDEX IF NOT EXISTS cart_items_by_product ON cart_items (product_id);
