-- The catalogue. Money in minor units; ids are UUID strings.
CREATE TABLE IF NOT EXISTS products (
    id          CHAR(36)        NOT NULL PRIMARY KEY,
    name        VARCHAR(200)    NOT NULL,
    description TEXT            NOT NULL,
    price_cents BIGINT          NOT NULL,
    stock       INT UNSIGNED    NOT NULL,
    category    VARCHAR(100)    NOT NULL,
    image_url   VARCHAR(2048)   NULL,
    version     BIGINT UNSIGNED NOT NULL,
    created_at  DATETIME(6)     NOT NULL,
    updated_at  DATETIME(6)     NOT NULL,
    INDEX products_by_category (category),
    INDEX products_by_price (price_cents),
    INDEX products_by_created (created_at),
    INDEX products_by_name (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4 COLLATE = utf8mb4_unicode_ci;

-- Events written in the same transaction as the change; the relay publishes
-- and deletes them. `seq` is commit order; a lease marks a claimed event.
CREATE TABLE IF NOT EXISTS outbox (
    seq          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
    id           CHAR(36)        NOT NULL UNIQUE,
    event_key    VARCHAR(64)     NOT NULL,
    payload      LONGBLOB        NOT NULL,
    created_at   DATETIME(6)     NOT NULL,
    leased_until DATETIME(6)     NULL
) ENGINE = InnoDB;
