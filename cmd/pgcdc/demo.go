package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// DemoCommand shows pgcdc's main job in one command: it starts a throwaway
// source Postgres from the local server binaries, loads a small shop
// schema, runs a light live workload on it, replicates it continuously into
// a fresh DuckDB file and serves that replica. Ctrl-C removes all of it.
type DemoCommand struct {
	Listen   string
	LogLevel string
	// Rate is the workload's source transactions per second.
	Rate float64
	out  io.Writer
}

// ParseFlags reads the demo's flags.
func (c *DemoCommand) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("pgcdc demo", flag.ContinueOnError)
	fs.StringVar(&c.Listen, "listen", "127.0.0.1:6543", "address to accept Postgres clients on (loopback only)")
	fs.StringVar(&c.LogLevel, "log-level", "warn", "log level of the server: debug, info, warn, error")
	fs.Float64Var(&c.Rate, "rate", 4, "source transactions a second of the demo workload")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: pgcdc demo [flags]

Starts a throwaway source Postgres from the local server binaries (initdb, pg_ctl:
$PGCDC_PG_BINDIR, /usr/lib/postgresql/*/bin or $PATH), loads shop.customers and
shop.orders, runs a light workload on them, replicates them continuously into a new
DuckDB file and serves it. Ctrl-C stops it and removes everything it created.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("pgcdc demo takes no arguments, got %q", fs.Args())
	}
	if c.Rate <= 0 || c.Rate > 1000 {
		return fmt.Errorf("--rate must be between 0 and 1000, got %v", c.Rate)
	}
	return nil
}

// demoSchema is the demo's source: the shop the tests use, a little larger.
const demoSchema = `
CREATE SCHEMA shop;
CREATE TABLE shop.customers (id int PRIMARY KEY, name text NOT NULL, email text);
CREATE TABLE shop.orders (id bigserial PRIMARY KEY, customer_id int NOT NULL REFERENCES shop.customers, amount numeric(12,2) NOT NULL,
	status text NOT NULL DEFAULT 'new', placed_at timestamptz NOT NULL DEFAULT now());
INSERT INTO shop.customers SELECT g, 'customer ' || g, 'c' || g || '@example.com' FROM generate_series(1, 50) g;
INSERT INTO shop.orders (customer_id, amount, status, placed_at)
	SELECT 1 + g % 50, (g * 7.31) % 500, 'shipped', now() - (1000 - g) * interval '1 minute' FROM generate_series(1, 1000) g;`

// Run runs the demo until SIGINT or SIGTERM, then removes what it created.
func (c *DemoCommand) Run(ctx context.Context) (err error) {
	out := c.out
	if out == nil {
		out = os.Stdout
	}
	host, _, err := net.SplitHostPort(c.Listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w", c.Listen, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("--listen %q: the demo serves on a loopback address only", c.Listen)
	}
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	bin, err := pgtest.BinDir()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "Starting a throwaway source Postgres from %s ...\n", bin)
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	cluster, err := pgtest.Start(startCtx, pgtest.Options{})
	cancel()
	if err != nil {
		return err
	}
	defer func() {
		if serr := cluster.Stop(); serr != nil && err == nil {
			err = serr
		}
		fmt.Fprintf(out, "Removed the source Postgres (%s).\n", filepath.Dir(cluster.Dir))
	}()
	dir, err := os.MkdirTemp("", "pgcdc-demo-")
	if err != nil {
		return err
	}
	defer func() {
		os.RemoveAll(dir)
		fmt.Fprintf(out, "Removed the replica (%s).\n", dir)
	}()
	file := filepath.Join(dir, "replica.duckdb")
	source := cluster.DSN("postgres")
	if err := cluster.Exec(ctx, "postgres", demoSchema); err != nil {
		return fmt.Errorf("loading the demo schema: %w", err)
	}

	serve := &ServeCommand{}
	if err := serve.ParseFlags([]string{"--listen", c.Listen, "--destination", "duckdb:" + file, "--log-level", c.LogLevel, "--shutdown-grace", "10s"}); err != nil {
		return err
	}
	serve.Source = source
	served := make(chan error, 1)
	go func() { served <- serve.Run(ctx) }()
	client, err := c.connect(ctx, serve.Password, served)
	if err != nil {
		return err
	}
	for _, q := range []string{
		`SELECT * FROM init_replication('demo', 'demo_pub', schema_name => 'shop', persist_snapshots => true)`,
		`SELECT * FROM start_replication('demo', 'demo_pub')`,
	} {
		if _, err := client.Exec(ctx, q); err != nil {
			client.Close(context.Background())
			stop()
			<-served
			return fmt.Errorf("%s: %w", q, err)
		}
	}
	client.Close(context.Background())

	work := make(chan error, 1)
	go func() { work <- demoWorkload(ctx, source, c.Rate) }()

	_, port, _ := net.SplitHostPort(c.Listen)
	fmt.Fprintf(out, `
pgcdc demo is running.
  source   a throwaway Postgres on 127.0.0.1:%d, with about %.0f transactions a second on shop.orders
  replica  %s, kept current by start_replication('demo', 'demo_pub')
  serving  %s

In another terminal, connect with psql and watch the orders arrive:

  psql -h %s -p %s

  SELECT count(*), max(id), max(placed_at) FROM shop.orders;
  SELECT status, count(*) FROM shop.orders GROUP BY status ORDER BY status;
  SELECT * FROM replication_status();
  SELECT * FROM replicate('demo', 'demo_pub');   -- waits until the replica has caught up
  SELECT * FROM pause_replication('demo');        -- and resume_replication('demo')

Change the source yourself and see it in the replica within a second:

  psql '%s' -c "INSERT INTO shop.orders (customer_id, amount) VALUES (1, 42)"

Press Ctrl-C to stop; the demo removes everything it created.
`, cluster.Port, c.Rate, file, c.Listen, host, port, source)

	select {
	case err = <-served:
		// A signal, or the server failed.
		<-work
		return err
	case werr := <-work:
		if ctx.Err() == nil && werr != nil {
			fmt.Fprintf(out, "The demo workload stopped: %v\n", werr)
		}
		err = <-served
		return err
	}
}

// connect waits for the server to accept clients.
func (c *DemoCommand) connect(ctx context.Context, password string, served <-chan error) (*pgx.Conn, error) {
	host, port, _ := net.SplitHostPort(c.Listen)
	u := url.URL{Scheme: "postgres", Host: net.JoinHostPort(host, port), Path: "/demo", RawQuery: "sslmode=disable"}
	if password != "" {
		u.User = url.UserPassword("demo", password)
	} else {
		u.User = url.User("demo")
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(ctx, u.String())
		if err == nil {
			return conn, nil
		}
		select {
		case serr := <-served:
			if serr == nil {
				serr = errors.New("the server stopped")
			}
			return nil, serr
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the server on %s does not accept clients: %w", c.Listen, err)
		}
	}
}

// demoWorkload places, ships and cancels orders, and now and then signs up
// a customer, at about rate transactions a second until ctx ends.
func demoWorkload(ctx context.Context, dsn string, rate float64) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	tick := time.NewTicker(time.Duration(float64(time.Second) / rate))
	defer tick.Stop()
	customers := 50
	for n := 1; ; n++ {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		var q string
		var args []any
		switch {
		case n%40 == 0:
			customers++
			q, args = `INSERT INTO shop.customers VALUES ($1::int, 'customer ' || $1::int, NULL)`, []any{customers}
		case n%10 == 0:
			q = `DELETE FROM shop.orders WHERE id = (SELECT min(id) FROM shop.orders WHERE status = 'cancelled')`
		case n%5 == 0:
			q = `UPDATE shop.orders SET status = 'cancelled' WHERE id = (SELECT max(id) FROM shop.orders WHERE status = 'new')`
		case n%3 == 0:
			q = `UPDATE shop.orders SET status = 'shipped' WHERE id = (SELECT min(id) FROM shop.orders WHERE status = 'new')`
		default:
			q, args = `INSERT INTO shop.orders (customer_id, amount) VALUES ($1, $2)`,
				[]any{1 + rng.Intn(customers), strconv.FormatFloat(float64(rng.Intn(50000))/100, 'f', 2, 64)}
		}
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}
