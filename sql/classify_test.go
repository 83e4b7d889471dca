package sql_test

import (
	"errors"
	"reflect"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgcdc/pgcdc/sql"
)

var replicateColumns = []string{"table_name", "inserts", "updates", "deletes", "truncates", "start_lsn", "end_lsn"}

func TestClassifyCalls(t *testing.T) {
	c := mustCatalog(t)
	tests := []struct {
		name  string
		query string
		fn    string
		form  sql.CallForm
		cols  []string
	}{
		{"scalar", `SELECT replicate('s', 'p')`, "replicate", sql.FormScalar, []string{"replicate"}},
		{"scalar alias", `SELECT replicate('s', 'p') AS r`, "replicate", sql.FormScalar, []string{"r"}},
		{"scalar bare alias", `SELECT pgcdc.replicate('s', 'p') r`, "replicate", sql.FormScalar, []string{"r"}},
		{"table star", `SELECT * FROM replicate('s', 'p')`, "replicate", sql.FormTable, replicateColumns},
		{"table columns", `SELECT table_name, end_lsn FROM replicate('s', 'p')`, "replicate", sql.FormTable, []string{"table_name", "end_lsn"}},
		{"column alias", `SELECT inserts AS ins, deletes d FROM replicate('s', 'p')`, "replicate", sql.FormTable, []string{"ins", "d"}},
		{"relation alias", `SELECT r.table_name, r.* FROM replicate('s', 'p') AS r`, "replicate", sql.FormTable, append([]string{"table_name"}, replicateColumns...)},
		{"function name as relation", `SELECT replicate.inserts FROM pgcdc.replicate('s', 'p')`, "replicate", sql.FormTable, []string{"inserts"}},
		{"column alias list", `SELECT * FROM replicate('s', 'p') AS r(t, i)`, "replicate", sql.FormTable, append([]string{"t", "i"}, replicateColumns[2:]...)},
		{"renamed column by new name", `SELECT r.t FROM replicate('s', 'p') AS r(t)`, "replicate", sql.FormTable, []string{"t"}},
		{"trailing semicolon", `SELECT * FROM replicate('s', 'p');`, "replicate", sql.FormTable, replicateColumns},
		{"dbt comment", `/* {"app": "dbt", "dbt_version": "1.8.0", "node_id": "model.shop.orders"} */ SELECT * FROM pgcdc.replicate('s', 'p')`, "replicate", sql.FormTable, replicateColumns},
		{"line comment", "-- replicate the shop\n  select replicate('s', 'p');  ", "replicate", sql.FormScalar, []string{"replicate"}},
		{"upper case", `SELECT * FROM PGCDC.REPLICATE('s', 'p')`, "replicate", sql.FormTable, replicateColumns},
		{"mixed case", `SeLeCt RePlIcAtE('s', 'p')`, "replicate", sql.FormScalar, []string{"replicate"}},
		{"quoted", `SELECT "pgcdc"."replicate"('s', 'p')`, "replicate", sql.FormScalar, []string{"replicate"}},
		{"quoted upper", `SELECT "PGCDC"."Replicate"('s', 'p')`, "replicate", sql.FormScalar, []string{"replicate"}},
		{"init_replication", `SELECT * FROM init_replication('s', 'p')`, "init_replication", sql.FormTable,
			[]string{"table_name", "snapshot_rows", "consistent_lsn", "slot_name", "publication", "dataset_name"}},
		{"replication_status no args", `SELECT * FROM pgcdc.replication_status()`, "replication_status", sql.FormTable,
			[]string{"slot_name", "publication", "active", "confirmed_lsn", "current_lsn", "lag_bytes", "wal_status", "last_replicated_at", "tables",
				"table_name", "state", "lag_seconds", "last_commit_at", "last_error", "inserts", "updates", "deletes", "truncates"}},
		{"replication_status scalar", `select replication_status('s')`, "replication_status", sql.FormScalar, []string{"replication_status"}},
		{"drop_replication", `SELECT dropped_tables FROM drop_replication('s', 'p', drop_tables => true)`, "drop_replication", sql.FormTable, []string{"dropped_tables"}},
		{"newlines", "SELECT *\nFROM\n\tpgcdc.replicate(\n\t'slot',\n\t'pub'\n)\n", "replicate", sql.FormTable, replicateColumns},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call, err := c.Classify(tt.query)
			if err != nil {
				t.Fatalf("Classify(%q): %v", tt.query, err)
			}
			if call == nil {
				t.Fatalf("Classify(%q) = passthrough, want a call of %s", tt.query, tt.fn)
			}
			if call.Function.Name != tt.fn || call.Form != tt.form {
				t.Errorf("got %s %s, want %s %s", call.Function.Name, call.Form, tt.fn, tt.form)
			}
			var cols []string
			for _, col := range call.Columns {
				cols = append(cols, col.Name)
			}
			if !reflect.DeepEqual(cols, tt.cols) {
				t.Errorf("columns = %v, want %v", cols, tt.cols)
			}
		})
	}
}

func TestClassifyColumns(t *testing.T) {
	c := mustCatalog(t)
	call, err := c.Classify(`SELECT end_lsn, r.inserts AS n FROM replicate('s', 'p') r`)
	if err != nil {
		t.Fatal(err)
	}
	want := []sql.OutputColumn{
		{Name: "end_lsn", Type: sql.Type{Name: "pg_lsn", OID: 3220}, Index: 6},
		{Name: "n", Type: sql.Type{Name: "bigint", OID: 20}, Index: 1},
	}
	if !reflect.DeepEqual(call.Columns, want) {
		t.Errorf("Columns = %+v, want %+v", call.Columns, want)
	}

	call, err = c.Classify(`SELECT replicate('s', 'p')`)
	if err != nil {
		t.Fatal(err)
	}
	want = []sql.OutputColumn{{Name: "replicate", Type: sql.Type{Name: "record", OID: 2249}, Index: -1}}
	if !reflect.DeepEqual(call.Columns, want) {
		t.Errorf("scalar Columns = %+v, want %+v", call.Columns, want)
	}
}

func TestClassifyPassthrough(t *testing.T) {
	c := mustCatalog(t)
	for _, q := range []string{
		``,
		`SELECT 1`,
		`select * from orders where id = 1`,
		`INSERT INTO t VALUES (1, 'replicate')`,
		`SELECT 'replicate(''s'', ''p'')'`,
		`SELECT $$ SELECT * FROM replicate('s', 'p') $$`,
		`SELECT replicate FROM t`,
		`SELECT "replicate", t.replicate FROM t`,
		`SELECT x AS replicate FROM t`,
		`SELECT * FROM replication_status`,
		`SELECT * FROM pgcdc.replication_status`,
		`CREATE TABLE replicate (init_replication int)`,
		`DROP FUNCTION replicate(text)`,
		`COMMENT ON TABLE t IS 'call replicate() nightly'`,
		`-- SELECT replicate('s', 'p')`,
		"/* SELECT replicate('s', 'p') */ SELECT 1",
		`SELECT * FROM pg_replication_slots`,
		`SELECT replicated_at, replicate_x('a') FROM t`,
		`SELECT myschema.replicate('s', 'p')`,
		`SELECT * FROM other.replicate('s', 'p')`,
		`SELECT public.replicate(x) + 1 FROM t WHERE public.replicate(y) > 0`,
		`SELECT mydb.pgcdc.replicate('s', 'p')`,
		`FROM replicate_log SELECT *`,             // DuckDB FROM-first
		`SUMMARIZE SELECT * FROM replicate_log`,   // DuckDB only
		`SELECT replicate('s', 'p'`,               // syntax error: the destination reports it
		`SELECT 1; SELECT 'replicate'`,            // several statements, none ours
		`PIVOT replicate_stats ON t USING sum(n)`, // DuckDB only
	} {
		call, err := c.Classify(q)
		if err != nil || call != nil {
			t.Errorf("Classify(%q) = %v, %v; want passthrough", q, call, err)
		}
	}
}

func TestClassifyErrors(t *testing.T) {
	c := mustCatalog(t)
	tests := []struct {
		name  string
		query string
		code  string
	}{
		// Our function in a shape we cannot run.
		{"arithmetic", `SELECT replicate('s', 'p') + 1`, "0A000"},
		{"in where", `SELECT * FROM t WHERE replicate('s', 'p') IS NOT NULL`, "0A000"},
		{"where on result", `SELECT * FROM replicate('s', 'p') WHERE inserts > 0`, "0A000"},
		{"order by", `SELECT * FROM replicate('s', 'p') ORDER BY 1`, "0A000"},
		{"limit", `SELECT * FROM replicate('s', 'p') LIMIT 1`, "0A000"},
		{"distinct", `SELECT DISTINCT * FROM replicate('s', 'p')`, "0A000"},
		{"group by", `SELECT table_name FROM replicate('s', 'p') GROUP BY 1`, "0A000"},
		{"aggregate", `SELECT count(*) FROM replicate('s', 'p')`, "0A000"},
		{"expression target", `SELECT inserts + 1 FROM replicate('s', 'p')`, "0A000"},
		{"two targets", `SELECT replicate('s', 'p'), 1`, "0A000"},
		{"scalar with from", `SELECT replicate('s', 'p') FROM t`, "0A000"},
		{"cross join", `SELECT * FROM replicate('s', 'p'), t`, "0A000"},
		{"join", `SELECT * FROM replicate('s', 'p') JOIN t ON true`, "0A000"},
		{"ordinality", `SELECT * FROM replicate('s', 'p') WITH ORDINALITY`, "0A000"},
		{"lateral", `SELECT * FROM LATERAL replicate('s', 'p')`, "0A000"},
		{"rows from", `SELECT * FROM ROWS FROM (replicate('s', 'p'))`, "0A000"},
		{"column definition list", `SELECT * FROM replicate('s', 'p') AS r(a text)`, "0A000"},
		{"field selection", `SELECT (replicate('s', 'p')).*`, "0A000"},
		{"union", `SELECT * FROM replicate('s', 'p') UNION ALL SELECT * FROM replicate('s', 'p')`, "0A000"},
		{"cte", `WITH x AS (SELECT * FROM replicate('s', 'p')) SELECT * FROM x`, "0A000"},
		{"subquery", `SELECT * FROM (SELECT * FROM replicate('s', 'p')) s`, "0A000"},
		{"insert select", `INSERT INTO log SELECT * FROM replicate('s', 'p')`, "0A000"},
		{"create table as", `CREATE TABLE log AS SELECT * FROM replicate('s', 'p')`, "0A000"},
		{"select into", `SELECT replicate('s', 'p') INTO log`, "0A000"},
		{"explain", `EXPLAIN SELECT replicate('s', 'p')`, "0A000"},
		{"call", `CALL replicate('s', 'p')`, "0A000"},
		{"aggregate decoration", `SELECT replicate(DISTINCT 's', 'p')`, "0A000"},
		{"window", `SELECT replicate('s', 'p') OVER ()`, "0A000"},
		{"star argument", `SELECT replicate(*)`, "0A000"},
		{"ours beside another schema", `SELECT public.replicate('a') + pgcdc.replicate('s', 'p')`, "0A000"},
		{"several statements", `SELECT 1; SELECT * FROM replicate('s', 'p')`, "42601"},

		// Column references against the result.
		{"unknown column", `SELECT nope FROM replicate('s', 'p')`, "42703"},
		{"renamed column by old name", `SELECT r.table_name FROM replicate('s', 'p') AS r(t)`, "42703"},
		{"unknown relation", `SELECT x.table_name FROM replicate('s', 'p') r`, "42P01"},
		{"too many column aliases", `SELECT * FROM replicate('s', 'p') AS r(a, b, c, d, e, f, g, h)`, "42P10"},

		// Arguments.
		{"column argument", `SELECT replicate(slot, 'p')`, "0A000"},
		{"subquery argument", `SELECT replicate((SELECT 's'), 'p')`, "0A000"},
		{"function argument", `SELECT replicate(lower('S'), 'p')`, "0A000"},
		{"cast of function", `SELECT replicate(now()::text, 'p')`, "0A000"},
		{"operator argument", `SELECT replicate('s' || 'x', 'p')`, "0A000"},
		{"nested call", `SELECT * FROM replicate(replicate('a', 'b'), 'p')`, "0A000"},
		{"row argument", `SELECT replicate(ROW('s'), 'p')`, "0A000"},
		{"nested array", `SELECT init_replication('s', 'p', table_names => ARRAY[ARRAY['a']])`, "0A000"},
		{"unknown name", `SELECT replicate('s', 'p', nope => 1)`, "42883"},
		{"quoted name is case sensitive", `SELECT replicate('s', 'p', "Flush_Slot" => true)`, "42883"},
		{"missing required", `SELECT * FROM replicate('s')`, "42883"},
		{"missing required by name", `SELECT * FROM replicate(pub_name => 'p')`, "42883"},
		{"too many positional", `SELECT replicate('s', 'p', NULL, NULL, 1, true, NULL, 'hard', 'extra')`, "42883"},
		{"positional and named", `SELECT replicate('s', 'p', slot_name => 's')`, "42883"},
		{"duplicate named", `SELECT replicate('s', 'p', flush_slot => true, flush_slot := false)`, "42601"},
		{"positional after named", `SELECT replicate(slot_name => 's', 'p')`, "42601"},
		{"bad integer", `SELECT replicate('s', 'p', target_batch_size => 'many')`, "22P02"},
		{"bad boolean", `SELECT replicate('s', 'p', flush_slot => 'maybe')`, "22P02"},
		{"bad json", `SELECT replicate('s', 'p', include_columns => '{"orders": [}')`, "22P02"},
		{"trailing json", `SELECT replicate('s', 'p', include_columns => '{} {}')`, "22P02"},
		{"bad array", `SELECT init_replication('s', 'p', table_names => '{a,')`, "22P02"},
		{"bad cast", `SELECT replicate('s', 'p', target_batch_size => 'x'::int)`, "22P02"},
		{"double underscore", `SELECT replicate('s', 'p', target_batch_size => '1__0')`, "22P02"},
		{"leading underscore", `SELECT replicate('s', 'p', target_batch_size => '_10')`, "22P02"},
		{"trailing underscore", `SELECT replicate('s', 'p', target_batch_size => '10_')`, "22P02"},
		{"double sign", `SELECT replicate('s', 'p', target_batch_size => '+-10')`, "22P02"},
		{"fraction text", `SELECT replicate('s', 'p', target_batch_size => '1.0')`, "22P02"},
		{"huge exponent", `SELECT replicate('s', 'p', target_batch_size => 1e999999999::int)`, "22003"},
		{"integer out of range", `SELECT replicate('s', 'p', target_batch_size => 3000000000)`, "22003"},
		{"integer text out of range", `SELECT replicate('s', 'p', target_batch_size => '99999999999999999999')`, "22003"},
		{"smallint cast out of range", `SELECT replicate('s', 'p', target_batch_size => 70000::smallint)`, "22003"},
		{"integer for text", `SELECT replicate(1, 'p')`, "42804"},
		{"integer for boolean", `SELECT replicate('s', 'p', flush_slot => 1)`, "42804"},
		{"numeric for integer", `SELECT replicate('s', 'p', target_batch_size => 1.5)`, "42804"},
		{"boolean for integer", `SELECT replicate('s', 'p', target_batch_size => true)`, "42804"},
		{"array for text", `SELECT replicate(ARRAY['s'], 'p')`, "42804"},
		{"text for jsonb", `SELECT replicate('s', 'p', columns => '{}'::text)`, "42804"},
		{"bit string", `SELECT replicate(B'101', 'p')`, "42804"},
		{"integer array elements", `SELECT init_replication('s', 'p', table_names => ARRAY[1, 2])`, "42804"},
		{"impossible cast", `SELECT replicate('s', 'p', columns => 1::jsonb)`, "42846"},
		{"unsupported cast", `SELECT replicate('0/0'::pg_lsn, 'p')`, "0A000"},
		{"unknown cast", `SELECT replicate('t'::regclass, 'p')`, "0A000"},
		{"json array", `SELECT replicate('s', 'p', include_columns => '["orders"]')`, "22023"},
		{"json scalar", `SELECT replicate('s', 'p', columns => '1'::jsonb)`, "22023"},
		{"null element", `SELECT init_replication('s', 'p', table_names => ARRAY['a', NULL])`, "22004"},
		{"null element literal", `SELECT init_replication('s', 'p', table_names => '{a,NULL}')`, "22004"},
		{"multidimensional literal", `SELECT init_replication('s', 'p', table_names => '{{a},{b}}')`, "0A000"},
		{"parameter zero", `SELECT replicate($0, 'p')`, "42P02"},
		{"parameter too high", `SELECT replicate($99999999, 'p')`, "42P02"},
		{"inconsistent parameter", `SELECT replicate($1, $1::int)`, "42P08"},
		{"nul byte", "SELECT replicate('s', 'p')\x00; DROP TABLE t", "22021"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call, err := c.Classify(tt.query)
			if call != nil {
				t.Fatalf("Classify(%q) = %+v, want error %s", tt.query, call, tt.code)
			}
			e := wantCode(t, err, tt.code)
			if e.Severity != "ERROR" || e.Message == "" {
				t.Errorf("incomplete error: %+v", e)
			}
		})
	}
}

func TestClassifyErrorMessages(t *testing.T) {
	c := mustCatalog(t)
	for _, tt := range []struct {
		query string
		msg   string
	}{
		{`SELECT replicate('s', 'p') + 1`, `pgcdc: replicate() must be called as SELECT replicate(...) or SELECT * FROM replicate(...)`},
		{`SELECT * FROM init_replication(slot, 'p')`, `pgcdc: arguments to init_replication() must be constants or parameters`},
		{`SELECT replicate('s', 'p', nope => 1)`, `function pgcdc.replicate() has no parameter named "nope"`},
		{`SELECT replicate('s')`, `function pgcdc.replicate() requires argument pub_name`},
		{`SELECT replicate('s', 'p', target_batch_size => 'many')`, `replicate(): argument target_batch_size: invalid input syntax for type integer: "many"`},
		{`SELECT replicate(1, 'p')`, `replicate(): argument slot_name: expected text, got integer`},
		{`SELECT replicate('s', 'p', target_batch_size => 3000000000)`, `replicate(): argument target_batch_size: value 3000000000 is out of range for type integer`},
	} {
		_, err := c.Classify(tt.query)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) {
			t.Fatalf("Classify(%q): error %v, want a *pgconn.PgError", tt.query, err)
		}
		if got := pgErr.Message; got != tt.msg {
			t.Errorf("Classify(%q):\n got %s\nwant %s", tt.query, got, tt.msg)
		}
	}
}
