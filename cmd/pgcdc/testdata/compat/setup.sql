-- The source schema of the compatibility suite (compat_test.go). The same
-- tables exist on the source, which is the reference Postgres, and in the
-- replica, so every catalog question about them has one right answer.
-- No column has a default: the replica computes no values, so it has none
-- to describe (docs/compatibility.md, "Catalog").
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id int PRIMARY KEY, name text NOT NULL, email varchar(120));
CREATE TABLE shop.orders (
    id bigint PRIMARY KEY,
    customer_id integer NOT NULL,
    amount numeric(12,2),
    note text,
    tags text[],
    placed_at timestamp(3) with time zone,
    status character varying(20),
    flag boolean);
CREATE TABLE shop.order_lines (order_id bigint, line smallint, sku char(8), qty double precision, PRIMARY KEY (order_id, line));
COMMENT ON COLUMN shop.orders.note IS 'free text from the checkout form';
INSERT INTO shop.customers VALUES (1, 'Ada', 'ada@example.com'), (2, 'Grace', NULL);
INSERT INTO shop.orders VALUES (1, 1, 10.50, 'first', '{a,b}', '2026-01-02 03:04:05.123+00', 'new', true);
INSERT INTO shop.order_lines VALUES (1, 1, 'SKU-0001', 2.5);
