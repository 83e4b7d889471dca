package sql_test

import (
	"errors"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgcdc/pgcdc/sql"
)

var loadCatalog = sync.OnceValues(sql.LoadCatalog)

func mustCatalog(tb testing.TB) *sql.Catalog {
	tb.Helper()
	c, err := loadCatalog()
	if err != nil {
		tb.Fatalf("LoadCatalog: %v", err)
	}
	return c
}

// wantCode fails unless err is a *pgconn.PgError with the given SQLSTATE.
func wantCode(tb testing.TB, err error, code string) *pgconn.PgError {
	tb.Helper()
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		tb.Fatalf("error = %v (%T), want *pgconn.PgError %s", err, err, code)
	}
	if pgErr.Code != code {
		tb.Fatalf("SQLSTATE = %s (%s), want %s", pgErr.Code, pgErr.Message, code)
	}
	return pgErr
}

func TestLoadCatalog(t *testing.T) {
	c := mustCatalog(t)
	var names []string
	for _, fn := range c.Functions {
		names = append(names, fn.Name)
		if strings.TrimSpace(fn.Comment) == "" {
			t.Errorf("%s has no COMMENT", fn.Name)
		}
	}
	if want := []string{"init_replication", "replicate", "replication_status", "drop_replication", "verify_replication", "check_replication",
		"start_replication", "stop_replication", "pause_replication", "resume_replication", "resync_table"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("functions = %v, want %v", names, want)
	}

	type param struct {
		Name       string
		Type       sql.Type
		Default    any
		HasDefault bool
	}
	text := sql.Type{Name: "text", OID: 25}
	boolean := sql.Type{Name: "boolean", OID: 16}
	jsonb := sql.Type{Name: "jsonb", OID: 3802}
	bigint := sql.Type{Name: "bigint", OID: 20}
	lsn := sql.Type{Name: "pg_lsn", OID: 3220}
	textArray := sql.Type{Name: "text[]", OID: 1009}

	tests := []struct {
		fn     string
		params []param
		result []sql.ResultColumn
	}{
		{
			fn: "init_replication",
			params: []param{
				{"slot_name", text, nil, false},
				{"pub_name", text, nil, false},
				{"schema_name", text, "public", true},
				{"table_names", textArray, nil, true},
				{"publish", text, nil, true},
				{"persist_snapshots", boolean, false, true},
				{"include_columns", jsonb, nil, true},
				{"columns", jsonb, nil, true},
				{"reset", boolean, false, true},
				{"dataset_name", text, nil, true},
				{"adopt", boolean, false, true},
				{"write_disposition", text, nil, true},
			},
			result: []sql.ResultColumn{
				{Name: "table_name", Type: text}, {Name: "snapshot_rows", Type: bigint},
				{Name: "consistent_lsn", Type: lsn}, {Name: "slot_name", Type: text},
				{Name: "publication", Type: text}, {Name: "dataset_name", Type: text},
			},
		},
		{
			fn: "replicate",
			params: []param{
				{"slot_name", text, nil, false},
				{"pub_name", text, nil, false},
				{"include_columns", jsonb, nil, true},
				{"columns", jsonb, nil, true},
				{"target_batch_size", sql.Type{Name: "integer", OID: 23}, int64(1000), true},
				{"flush_slot", boolean, true, true},
				{"dataset_name", text, nil, true},
				{"delete_mode", text, "hard", true},
			},
			result: []sql.ResultColumn{
				{Name: "table_name", Type: text}, {Name: "inserts", Type: bigint},
				{Name: "updates", Type: bigint}, {Name: "deletes", Type: bigint},
				{Name: "truncates", Type: bigint}, {Name: "start_lsn", Type: lsn},
				{Name: "end_lsn", Type: lsn},
			},
		},
		{
			fn:     "replication_status",
			params: []param{{"slot_name", text, nil, true}, {"table_detail", boolean, false, true}},
			result: []sql.ResultColumn{
				{Name: "slot_name", Type: text}, {Name: "publication", Type: text},
				{Name: "active", Type: boolean}, {Name: "confirmed_lsn", Type: lsn},
				{Name: "current_lsn", Type: lsn}, {Name: "lag_bytes", Type: bigint},
				{Name: "wal_status", Type: text},
				{Name: "last_replicated_at", Type: sql.Type{Name: "timestamptz", OID: 1184}},
				{Name: "tables", Type: textArray}, {Name: "table_name", Type: text},
				{Name: "state", Type: text}, {Name: "lag_seconds", Type: sql.Type{Name: "double precision", OID: 701}},
				{Name: "last_commit_at", Type: sql.Type{Name: "timestamptz", OID: 1184}},
				{Name: "last_error", Type: text}, {Name: "inserts", Type: bigint}, {Name: "updates", Type: bigint},
				{Name: "deletes", Type: bigint}, {Name: "truncates", Type: bigint},
			},
		},
		{
			fn: "drop_replication",
			params: []param{
				{"slot_name", text, nil, false},
				{"pub_name", text, nil, false},
				{"drop_tables", boolean, false, true},
			},
			result: []sql.ResultColumn{
				{Name: "slot_name", Type: text}, {Name: "publication", Type: text},
				{Name: "dropped_tables", Type: textArray},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.fn, func(t *testing.T) {
			fn := c.Lookup(tt.fn)
			if fn == nil {
				t.Fatalf("Lookup(%q) = nil", tt.fn)
			}
			var got []param
			for _, p := range fn.Params {
				got = append(got, param{p.Name, p.Type, p.Default, p.HasDefault})
			}
			if !reflect.DeepEqual(got, tt.params) {
				t.Errorf("params:\n got %+v\nwant %+v", got, tt.params)
			}
			if !reflect.DeepEqual(fn.Result, tt.result) {
				t.Errorf("result:\n got %+v\nwant %+v", fn.Result, tt.result)
			}
		})
	}
}

func TestLookup(t *testing.T) {
	c := mustCatalog(t)
	for _, tt := range []struct {
		name string
		want string
	}{
		{"replicate", "replicate"},
		{"REPLICATE", "replicate"},
		{"pgcdc.replicate", "replicate"},
		{"PGCDC.Init_Replication", "init_replication"},
		{"public.replicate", ""},
		{"replicat", ""},
		{"", ""},
		{"pgcdc.", ""},
	} {
		fn := c.Lookup(tt.name)
		got := ""
		if fn != nil {
			got = fn.Name
		}
		if got != tt.want {
			t.Errorf("Lookup(%q) = %q, want %q", tt.name, got, tt.want)
		}
	}
}

func TestSignature(t *testing.T) {
	c := mustCatalog(t)
	got := c.Lookup("replicate").Signature()
	want := "pgcdc.replicate(slot_name text, pub_name text, include_columns jsonb DEFAULT NULL, " +
		"columns jsonb DEFAULT NULL, target_batch_size integer DEFAULT 1000, flush_slot boolean DEFAULT true, " +
		"dataset_name text DEFAULT NULL, delete_mode text DEFAULT 'hard')"
	if got != want {
		t.Errorf("Signature:\n got %s\nwant %s", got, want)
	}
}

func TestParseCatalog(t *testing.T) {
	const ok = `CREATE FUNCTION pgcdc.f(a text, b text[] DEFAULT '{x,"y z"}', c bigint DEFAULT -5,
		d jsonb DEFAULT '{"k": 1}', e varchar DEFAULT 'v'::varchar)
		RETURNS TABLE (r int) LANGUAGE internal AS 'f';
		COMMENT ON FUNCTION pgcdc.f IS 'doc';`
	c, err := sql.ParseCatalog(ok)
	if err != nil {
		t.Fatal(err)
	}
	fn := c.Lookup("f")
	if fn.Comment != "doc" {
		t.Errorf("Comment = %q", fn.Comment)
	}
	defaults := map[string]any{}
	for _, p := range fn.Params {
		defaults[p.Name] = p.Default
	}
	wantDefaults := map[string]any{"a": nil, "b": []string{"x", "y z"}, "c": int64(-5), "d": map[string]any{"k": jsonNumber("1")}, "e": "v"}
	if !reflect.DeepEqual(defaults, wantDefaults) {
		t.Errorf("defaults = %#v, want %#v", defaults, wantDefaults)
	}
	if got := fn.Params[4].Type; got != (sql.Type{Name: "character varying", OID: 1043}) {
		t.Errorf("varchar param type = %+v", got)
	}
	if got := fn.Result[0].Type; got != (sql.Type{Name: "integer", OID: 23}) {
		t.Errorf("int result type = %+v", got)
	}

	const tail = ` RETURNS TABLE (r text) LANGUAGE internal AS 'f'`
	bad := []struct {
		name string
		src  string
	}{
		{"empty", ``},
		{"syntax", `CREATE FUNCTION`},
		{"not a function", `SELECT 1`},
		{"unqualified", `CREATE FUNCTION f(a text)` + tail},
		{"other schema", `CREATE FUNCTION public.f(a text)` + tail},
		{"procedure", `CREATE PROCEDURE pgcdc.f(a text) LANGUAGE internal AS 'f'`},
		{"unknown type", `CREATE FUNCTION pgcdc.f(a uuid)` + tail},
		{"unnamed param", `CREATE FUNCTION pgcdc.f(text)` + tail},
		{"out param", `CREATE FUNCTION pgcdc.f(OUT a text)` + tail},
		{"lsn param", `CREATE FUNCTION pgcdc.f(a pg_lsn)` + tail},
		{"no table", `CREATE FUNCTION pgcdc.f(a text) RETURNS text LANGUAGE internal AS 'f'`},
		{"language sql", `CREATE FUNCTION pgcdc.f(a text) RETURNS TABLE (r text) LANGUAGE sql AS 'select 1'`},
		{"symbol mismatch", `CREATE FUNCTION pgcdc.f(a text) RETURNS TABLE (r text) LANGUAGE internal AS 'g'`},
		{"default not constant", `CREATE FUNCTION pgcdc.f(a text DEFAULT now())` + tail},
		{"default param", `CREATE FUNCTION pgcdc.f(a text DEFAULT $1)` + tail},
		{"default wrong type", `CREATE FUNCTION pgcdc.f(a integer DEFAULT 'abc')` + tail},
		{"required after default", `CREATE FUNCTION pgcdc.f(a text DEFAULT 'x', b text)` + tail},
		{"duplicate param", `CREATE FUNCTION pgcdc.f(a text, a text)` + tail},
		{"duplicate function", `CREATE FUNCTION pgcdc.f(a text)` + tail + `; CREATE FUNCTION pgcdc.f(b text)` + tail},
		{"comment unknown", `CREATE FUNCTION pgcdc.f(a text)` + tail + `; COMMENT ON FUNCTION pgcdc.g IS 'x'`},
		{"comment on table", `CREATE FUNCTION pgcdc.f(a text)` + tail + `; COMMENT ON TABLE pgcdc.f IS 'x'`},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := sql.ParseCatalog(tt.src); err == nil {
				t.Errorf("ParseCatalog(%q) succeeded, want an error", tt.src)
			}
		})
	}
}
