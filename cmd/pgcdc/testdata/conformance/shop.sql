-- The shop schema most scenarios start from (shopSchema in e2e_test.go).
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id int PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE shop.orders (id bigserial PRIMARY KEY, customer_id int NOT NULL, amount numeric(12,2), note text, placed_at timestamptz NOT NULL DEFAULT '2026-01-02 03:04:05.123456+00');
INSERT INTO shop.customers VALUES (1, 'Ada', 'ada@example.com'), (2, 'Grace', NULL), (3, 'Linus', 'l@example.com');
INSERT INTO shop.orders (customer_id, amount, note) VALUES (1, 10.50, 'first'), (2, 99.99, NULL), (1, 0.01, E'tab\tand ''quote''')
