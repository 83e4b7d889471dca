package main_test

import (
	"context"
	"fmt"
	"math/big"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
)

// source is the throwaway Postgres every test in this package shares; each
// test works in a database of its own.
var source *pgtest.Cluster

func TestMain(m *testing.M) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	c, err := pgtest.Start(ctx, pgtest.Options{})
	cancel()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cannot start a throwaway Postgres for the integration tests:", err)
		os.Exit(1)
	}
	source = c
	if _, err := pgcdctest.Binary(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		c.Stop()
		pgcdctest.RemoveBinary()
		os.Exit(1)
	}
	code := m.Run()
	stopDestinationCluster()
	c.Stop()
	pgcdctest.RemoveBinary()
	os.Exit(code)
}

var dbSeq atomic.Int64

// testDatabaseName is a new database name for test t, unique in this
// process.
func testDatabaseName(t *testing.T) string {
	name := fmt.Sprintf("%s_%d", strings.ToLower(strings.NewReplacer("/", "_", " ", "_").Replace(t.Name())), dbSeq.Add(1))
	if len(name) > 60 {
		name = name[len(name)-60:]
	}
	return name
}

// newSourceDB creates a fresh source database and returns its DSN and a
// connection to it.
func newSourceDB(ctx context.Context, t *testing.T) (string, *pgx.Conn) {
	t.Helper()
	name := testDatabaseName(t)
	if err := source.CreateDatabase(ctx, name); err != nil {
		t.Fatal(err)
	}
	dsn := source.DSN(name)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	// Slot names are the cluster's, not the database's: a scenario that
	// runs once per destination must find its slot names free again.
	// Registered first, so it runs after the test's pgcdc is gone.
	t.Cleanup(func() { dropSlots(name) })
	return dsn, conn
}

// dropSlots drops the logical slots of database db, waiting briefly for
// walsenders that are still letting go of them.
func dropSlots(db string) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	conn, err := source.Connect(ctx, "postgres")
	if err != nil {
		return
	}
	defer conn.Close(context.Background())
	for ctx.Err() == nil {
		if _, err := conn.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots
			WHERE database = $1 AND NOT active`, db); err != nil {
			return
		}
		var left int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE database = $1", db).Scan(&left); err != nil || left == 0 {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func testContext(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func mustExec(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := conn.Exec(ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// rowsOf runs a query and renders every row as text, for comparisons that
// do not depend on how each side types its values.
func rowsOf(ctx context.Context, t *testing.T, conn *pgx.Conn, sql string, args ...any) []string {
	t.Helper()
	out, err := queryRows(ctx, conn, sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// queryRows is rowsOf returning its error.
func queryRows(ctx context.Context, conn *pgx.Conn, sql string, args ...any) ([]string, error) {
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			return nil, err
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = norm(v)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	return out, rows.Err()
}

func norm(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case pgtype.Numeric:
		if !x.Valid {
			return "NULL"
		}
		r, _ := x.Value()
		return fmt.Sprint(r)
	case []byte:
		return fmt.Sprintf("%x", x)
	case *big.Int:
		return x.String()
	case int16, int32, int64, int:
		return fmt.Sprint(x)
	}
	return fmt.Sprint(v)
}

// sameRows fails when the replica's rows differ from the source's.
func sameRows(ctx context.Context, t *testing.T, src, rep *pgx.Conn, srcSQL, repSQL string) {
	t.Helper()
	want := rowsOf(ctx, t, src, srcSQL)
	got := rowsOf(ctx, t, rep, repSQL)
	if strings.Join(want, "\n") != strings.Join(got, "\n") {
		t.Fatalf("replica differs from source\nsource (%d rows):\n%s\nreplica (%d rows):\n%s",
			len(want), strings.Join(want, "\n"), len(got), strings.Join(got, "\n"))
	}
}

// pgCode returns the SQLSTATE of err, or "".
func pgCode(err error) string {
	if pe, ok := err.(*pgconn.PgError); ok {
		return pe.Code
	}
	var pe *pgconn.PgError
	if asPgError(err, &pe) {
		return pe.Code
	}
	return ""
}
