package main_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// A destination is one kind of store pgcdc replicates into, as the
// conformance suite (conformance_test.go) drives it: how pgcdc is pointed at
// a fresh, empty replica of it, how the replica is read, and the few
// questions the suite must ask each destination in its own dialect.
// Everything else a scenario does is the same for every destination.
//
// To add a destination, write one of these (a way to make an empty replica
// for each test, its catalog queries, its limits) and append it to
// destinations; every scenario then runs against it.
type destination struct {
	name string
	// skip, when it returns a reason, skips every scenario of the
	// destination with that reason.
	skip func() string
	// newReplica makes an empty replica for test t. It returns the
	// pgcdctest options that point pgcdc at it (Destination or DuckDB), and
	// a connection string to read it directly, or "" when clients read the
	// replica through pgcdc itself.
	newReplica func(ctx context.Context, t *testing.T) (pgcdctest.Options, string)

	// columnsSQL lists the columns of replica table $1.$2 in order, as a
	// name and a type in the destination's own spelling.
	columnsSQL string
	// tablesSQL lists the names of the replica tables in schema $1.
	tablesSQL string
	// stateLSNSQL is the LSN the destination stores for slot $1 when the
	// slot is ready, as a bigint.
	stateLSNSQL string
	// lsnLiteral writes an LSN as a value of the state's lsn columns.
	lsnLiteral func(lsn uint64) string
	// editState changes pgcdc's state as the destination stores it, as a
	// damaged or tampered replica would hold it; the replica's sessions are
	// usable afterwards.
	editState func(ctx context.Context, t *testing.T, r *replica, sql string)

	// types says how source types are stored (TestConformance/*/types).
	types typeRule
	// reservedDatasets are dataset names the destination refuses (42602).
	reservedDatasets []string
	// reservedSourceSchema is a source schema name the destination cannot
	// use as a replica schema, so replicating it needs a dataset_name.
	reservedSourceSchema string
	// refusedTable creates a source table shop.bad whose snapshot the
	// destination refuses after init_replication has created the slot
	// and the publication, and returns a text the error names.
	refusedTable func(ctx context.Context, t *testing.T, src *pgx.Conn, r *replica) string
}

// typeRule is how a destination stores source types.
type typeRule int

const (
	// mappedTypes: each source type maps to a type of the destination's own
	// (typeCase.duckType), whose value is checked against an expression
	// written by hand (typeCase.duckValue).
	mappedTypes typeRule = iota
	// sourceTypes: the replica keeps the source's exact type, and its text
	// output is the source's.
	sourceTypes
)

// destinations are the destinations every conformance scenario runs against.
var destinations = []*destination{duckdbDestination, postgresDestination}

var duckdbDestination = &destination{
	name: "duckdb",
	skip: func() string { return "" },
	newReplica: func(ctx context.Context, t *testing.T) (pgcdctest.Options, string) {
		return pgcdctest.Options{}, "" // pgcdctest makes a new file in t.TempDir()
	},
	columnsSQL: `SELECT column_name, data_type FROM duckdb_columns()
		WHERE schema_name = $1 AND table_name = $2 ORDER BY column_index`,
	tablesSQL:   `SELECT table_name FROM duckdb_tables() WHERE schema_name = $1 ORDER BY table_name`,
	stateLSNSQL: `SELECT CAST(lsn AS BIGINT) FROM _pgcdc.slots WHERE slot_name = $1 AND ready`,
	lsnLiteral:  func(lsn uint64) string { return fmt.Sprint(lsn) },
	// Clients cannot write _pgcdc, so the file is edited with pgcdc
	// stopped, as someone with the file could.
	editState: func(ctx context.Context, t *testing.T, r *replica, sql string) {
		t.Helper()
		r.srv.Kill()
		db, err := sqlOpenDuckDB(r.srv.DuckDB)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		db.Close()
		r.restart(ctx, t)
	},
	types:                mappedTypes,
	reservedDatasets:     []string{"_pgcdc", "_PGCDC", "temp", "system", "memory", "pg_catalog", "information_schema", "pg_foo", "replica"},
	reservedSourceSchema: "system",
	// DECIMAL has no NaN.
	refusedTable: func(ctx context.Context, t *testing.T, src *pgx.Conn, r *replica) string {
		mustExec(ctx, t, src, `CREATE TABLE shop.bad (id int PRIMARY KEY, v numeric(10,2)); INSERT INTO shop.bad VALUES (1, 'NaN')`)
		return "NaN"
	},
}

var postgresDestination = &destination{
	name: "postgres",
	skip: func() string { return "" },
	// A database of its own in the package's destination cluster, read
	// directly: the suite does not depend on pgcdc's proxy.
	newReplica: func(ctx context.Context, t *testing.T) (pgcdctest.Options, string) {
		t.Helper()
		c, err := destinationCluster()
		if err != nil {
			t.Fatal(err)
		}
		name := testDatabaseName(t)
		if err := c.CreateDatabase(ctx, name); err != nil {
			t.Fatal(err)
		}
		return pgcdctest.Options{Destination: c.DSN(name)}, c.DSN(name)
	},
	columnsSQL: `SELECT a.attname::text, format_type(a.atttypid, a.atttypmod)
		FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum`,
	tablesSQL: `SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY c.relname`,
	stateLSNSQL: `SELECT (lsn - '0/0')::int8 FROM _pgcdc.slots WHERE slot_name = $1 AND ready`,
	lsnLiteral:  func(lsn uint64) string { return fmt.Sprintf("'%X/%X'::pg_lsn", lsn>>32, uint32(lsn)) },
	editState: func(ctx context.Context, t *testing.T, r *replica, sql string) {
		t.Helper()
		mustExec(ctx, t, r.data, sql)
	},
	types:                sourceTypes,
	reservedDatasets:     []string{"_pgcdc", "_PGCDC", "pgcdc", "pg_catalog", "information_schema", "pg_foo"},
	reservedSourceSchema: "pgcdc",
	// Postgres stores every source value, so the replica refuses the table
	// the way a destination a client changed would: an event trigger (one
	// that fires for replication sessions too) puts a constraint no row
	// meets on the table as soon as it is created.
	refusedTable: func(ctx context.Context, t *testing.T, src *pgx.Conn, r *replica) string {
		mustExec(ctx, t, src, `CREATE TABLE shop.bad (id int PRIMARY KEY, v numeric(10,2)); INSERT INTO shop.bad VALUES (1, 1)`)
		mustExec(ctx, t, r.data, `CREATE FUNCTION public.refuse_bad() RETURNS event_trigger LANGUAGE plpgsql AS $$
			BEGIN
				IF EXISTS (SELECT 1 FROM pg_event_trigger_ddl_commands() WHERE object_identity = 'shop.bad') THEN
					ALTER TABLE shop.bad ADD CONSTRAINT refused_by_the_destination CHECK (false) NOT VALID;
				END IF;
			END $$;
			CREATE EVENT TRIGGER refuse_bad ON ddl_command_end WHEN TAG IN ('CREATE TABLE') EXECUTE FUNCTION public.refuse_bad();
			ALTER EVENT TRIGGER refuse_bad ENABLE ALWAYS`)
		return "refused_by_the_destination"
	},
}

var (
	destinationOnce sync.Once
	destinationPG   *pgtest.Cluster
	destinationErr  error
)

// destinationCluster is the throwaway Postgres that holds the Postgres
// destination's replicas, one database per test. It starts at its first use
// and TestMain stops it.
func destinationCluster() (*pgtest.Cluster, error) {
	destinationOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		destinationPG, destinationErr = pgtest.Start(ctx, pgtest.Options{})
	})
	return destinationPG, destinationErr
}

// stopDestinationCluster stops the destination cluster if it was started.
func stopDestinationCluster() {
	if destinationPG != nil {
		destinationPG.Stop()
	}
}

// replica is one pgcdc serving a fresh replica of a destination.
type replica struct {
	d    *destination
	srv  *pgcdctest.Server
	opts pgcdctest.Options
	// dataDSN reads the replica directly; "" reads it through pgcdc.
	dataDSN string
	// pgcdc is a client session on pgcdc, for pgcdc's functions.
	pgcdc *pgx.Conn
	// data reads and writes the replica's tables as a client does: through
	// pgcdc over DuckDB (the same session as pgcdc), in the destination
	// database itself over Postgres.
	data *pgx.Conn
}

// start makes a fresh replica of d and starts pgcdc on it with o (Source,
// Extra, Env); o must not name a destination.
func (d *destination) start(ctx context.Context, t *testing.T, o pgcdctest.Options) *replica {
	t.Helper()
	dest, dataDSN := d.newReplica(ctx, t)
	o.Destination, o.DuckDB = dest.Destination, dest.DuckDB
	r := &replica{d: d, opts: o, dataDSN: dataDSN}
	r.srv = pgcdctest.Start(t, o)
	if o.Destination == "" {
		r.opts.DuckDB = r.srv.DuckDB // the file pgcdctest made
	}
	r.connect(ctx, t)
	return r
}

// connect opens new sessions on pgcdc and on the replica.
func (r *replica) connect(ctx context.Context, t *testing.T) {
	t.Helper()
	r.pgcdc = r.srv.Connect(ctx, t)
	r.data = r.pgcdc
	if r.dataDSN != "" {
		cfg, err := pgx.ParseConfig(r.dataDSN)
		if err != nil {
			t.Fatal(err)
		}
		// Not the statement cache: scenarios change the replica's columns
		// under the same query text, and a cached plan would then fail.
		cfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("connect to the replica: %v", err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		r.data = conn
	}
}

// restart starts pgcdc again after a kill, and opens new sessions.
func (r *replica) restart(ctx context.Context, t *testing.T) {
	t.Helper()
	r.srv.Restart(t)
	r.connect(ctx, t)
}

// withSource starts another pgcdc on the same replica, replicating from
// source. The replica's own pgcdc must be stopped when the destination
// allows one process only (a DuckDB file).
func (r *replica) withSource(ctx context.Context, t *testing.T, source string) *replica {
	t.Helper()
	o := r.opts
	o.Source = source
	other := &replica{d: r.d, opts: o, dataDSN: r.dataDSN}
	other.srv = pgcdctest.Start(t, o)
	other.connect(ctx, t)
	return other
}

// tables lists the replica tables in schema.
func (r *replica) tables(ctx context.Context, t *testing.T, schema string) []string {
	t.Helper()
	return rowsOf(ctx, t, r.data, r.d.tablesSQL, schema)
}

// setup creates a fresh source database with schema and a pgcdc writing to
// a fresh replica of d.
func setup(ctx context.Context, t *testing.T, d *destination, schema string) (*pgx.Conn, *replica) {
	t.Helper()
	dsn, src := newSourceDB(ctx, t)
	if schema != "" {
		mustExec(ctx, t, src, schema)
	}
	return src, d.start(ctx, t, pgcdctest.Options{Source: dsn})
}
