-- Products the carts learned were deleted (from their DELETED event). An add
-- never leaves a line for one of them, even racing the event's handling.
CREATE TABLE IF NOT EXISTS removed_products (
    product_id UUID        PRIMARY KEY,
    removed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
