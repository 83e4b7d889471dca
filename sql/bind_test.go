package sql_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/pgcdc/pgcdc/sql"
)

func jsonNumber(s string) json.Number { return json.Number(s) }

// bind classifies query, which must be a call, and binds params.
func bind(tb testing.TB, query string, params ...any) (sql.Args, error) {
	tb.Helper()
	call, err := mustCatalog(tb).Classify(query)
	if err != nil {
		tb.Fatalf("Classify(%q): %v", query, err)
	}
	if call == nil {
		tb.Fatalf("Classify(%q) = passthrough", query)
	}
	return call.Bind(params)
}

func TestBindDefaults(t *testing.T) {
	args, err := bind(t, `SELECT * FROM replicate('slot', 'pub')`)
	if err != nil {
		t.Fatal(err)
	}
	want := sql.Args{
		"slot_name": "slot", "pub_name": "pub", "include_columns": nil, "columns": nil,
		"target_batch_size": int64(1000), "flush_slot": true, "dataset_name": nil, "delete_mode": "hard",
	}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("Args = %#v\nwant %#v", args, want)
	}

	args, err = bind(t, `SELECT * FROM init_replication('slot', 'pub', 'shop', NULL, 'insert', true, reset => true)`)
	if err != nil {
		t.Fatal(err)
	}
	want = sql.Args{
		"slot_name": "slot", "pub_name": "pub", "schema_name": "shop", "table_names": nil,
		"publish": "insert", "persist_snapshots": true, "include_columns": nil, "columns": nil,
		"reset": true, "dataset_name": nil, "adopt": false, "write_disposition": nil,
	}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("Args = %#v\nwant %#v", args, want)
	}
}

// TestBindValues checks one argument at a time: the call is
// init_replication or replicate with the argument appended by name.
func TestBindValues(t *testing.T) {
	tests := []struct {
		fn    string
		arg   string // "name => value"
		param string
		want  any
	}{
		// text
		{"replicate", `dataset_name => 'raw'`, "dataset_name", "raw"},
		{"replicate", `dataset_name := 'raw'`, "dataset_name", "raw"},
		{"replicate", `dataset_name => 'raw'::text`, "dataset_name", "raw"},
		{"replicate", `dataset_name => CAST('raw' AS varchar(10))`, "dataset_name", "raw"},
		{"replicate", `dataset_name => 'it''s'`, "dataset_name", "it's"},
		{"replicate", `dataset_name => E'a\\b'`, "dataset_name", `a\b`},
		{"replicate", `dataset_name => $$dollar 'quoted'$$`, "dataset_name", "dollar 'quoted'"},
		{"replicate", `dataset_name => U&'\0041'`, "dataset_name", "A"},
		{"replicate", `dataset_name => ''`, "dataset_name", ""},
		{"replicate", `dataset_name => 42::text`, "dataset_name", "42"},
		{"replicate", `dataset_name => true::text`, "dataset_name", "true"},
		{"replicate", `dataset_name => ARRAY['a', 'b c']::text`, "dataset_name", `{a,"b c"}`},
		{"replicate", `dataset_name => NULL`, "dataset_name", nil},
		{"replicate", `dataset_name => NULL::text`, "dataset_name", nil},

		// text[]
		{"init_replication", `table_names => 'orders'`, "table_names", []string{"orders"}},
		{"init_replication", `table_names => 'orders'::text`, "table_names", []string{"orders"}},
		{"init_replication", `table_names => '{a,b}'::text`, "table_names", []string{"{a,b}"}},
		{"init_replication", `table_names => '{orders}'`, "table_names", []string{"orders"}},
		{"init_replication", `table_names => ' { a , b } '`, "table_names", []string{"a", "b"}},
		{"init_replication", `table_names => '{"c d", "e\"f", g\\h, "", " x "}'`, "table_names", []string{"c d", `e"f`, `g\h`, "", " x "}},
		{"init_replication", `table_names => '{a b, "NULL", \NULL}'`, "table_names", []string{"a b", "NULL", "NULL"}},
		{"init_replication", `table_names => '{}'`, "table_names", []string{}},
		{"init_replication", `table_names => '[1:2]={a,b}'::text[]`, "table_names", []string{"a", "b"}},
		{"init_replication", `table_names => ARRAY['a', 'b']`, "table_names", []string{"a", "b"}},
		{"init_replication", `table_names => ARRAY[]::text[]`, "table_names", []string{}},
		{"init_replication", `table_names => ARRAY['a']::varchar[]`, "table_names", []string{"a"}},
		{"init_replication", `table_names => ARRAY[1, 2]::text[]`, "table_names", []string{"1", "2"}},
		{"init_replication", `table_names => CAST('{a,b}' AS text[])`, "table_names", []string{"a", "b"}},
		{"init_replication", `table_names => '{a,b}'::varchar[]`, "table_names", []string{"a", "b"}},
		{"init_replication", `table_names => NULL`, "table_names", nil},
		{"init_replication", `table_names => NULL::text[]`, "table_names", nil},

		// boolean
		{"replicate", `flush_slot => false`, "flush_slot", false},
		{"replicate", `flush_slot => 'true'`, "flush_slot", true},
		{"replicate", `flush_slot => 't'`, "flush_slot", true},
		{"replicate", `flush_slot => 'on'`, "flush_slot", true},
		{"replicate", `flush_slot => 'off'`, "flush_slot", false},
		{"replicate", `flush_slot => ' YES '`, "flush_slot", true},
		{"replicate", `flush_slot => 'n'`, "flush_slot", false},
		{"replicate", `flush_slot => '0'`, "flush_slot", false},
		{"replicate", `flush_slot => 'tr'`, "flush_slot", true},
		{"replicate", `flush_slot => 'f'::boolean`, "flush_slot", false},
		{"replicate", `flush_slot => 1::boolean`, "flush_slot", true},
		{"replicate", `flush_slot => NULL`, "flush_slot", nil},

		// integer
		{"replicate", `target_batch_size => 500`, "target_batch_size", int64(500)},
		{"replicate", `target_batch_size => 0`, "target_batch_size", int64(0)},
		{"replicate", `target_batch_size => -1`, "target_batch_size", int64(-1)},
		{"replicate", `target_batch_size => - 5`, "target_batch_size", int64(-5)},
		{"replicate", `target_batch_size => +5`, "target_batch_size", int64(5)},
		{"replicate", `target_batch_size => '500'`, "target_batch_size", int64(500)},
		{"replicate", `target_batch_size => ' +7 '`, "target_batch_size", int64(7)},
		{"replicate", `target_batch_size => '1_000'`, "target_batch_size", int64(1000)},
		{"replicate", `target_batch_size => 0x10`, "target_batch_size", int64(16)},
		{"replicate", `target_batch_size => '0x_1F'`, "target_batch_size", int64(31)},
		{"replicate", `target_batch_size => '0_17'`, "target_batch_size", int64(17)},
		{"replicate", `target_batch_size => '017'`, "target_batch_size", int64(17)},
		{"replicate", `target_batch_size => 1_000.4::int`, "target_batch_size", int64(1000)},
		{"replicate", `target_batch_size => '500'::int`, "target_batch_size", int64(500)},
		{"replicate", `target_batch_size => CAST('500' AS bigint)`, "target_batch_size", int64(500)},
		{"replicate", `target_batch_size => 1.4::int`, "target_batch_size", int64(1)},
		{"replicate", `target_batch_size => 2.5::integer`, "target_batch_size", int64(3)},
		{"replicate", `target_batch_size => (-2.5)::integer`, "target_batch_size", int64(-3)},
		{"replicate", `target_batch_size => 1e3::int`, "target_batch_size", int64(1000)},
		{"replicate", `target_batch_size => 2147483647`, "target_batch_size", int64(2147483647)},
		{"replicate", `target_batch_size => -2147483648`, "target_batch_size", int64(-2147483648)},
		{"replicate", `target_batch_size => NULL`, "target_batch_size", nil},

		// jsonb
		{"replicate", `include_columns => '{"orders": ["id", "total"]}'`, "include_columns",
			map[string]any{"orders": []any{"id", "total"}}},
		{"replicate", `columns => '{"orders": {"total": {"data_type": "decimal", "precision": 38}}}'::jsonb`, "columns",
			map[string]any{"orders": map[string]any{"total": map[string]any{"data_type": "decimal", "precision": jsonNumber("38")}}}},
		{"replicate", `columns => '{"n": 1.50}'::json`, "columns", map[string]any{"n": jsonNumber("1.50")}},
		{"replicate", `columns => '{}'`, "columns", map[string]any{}},
		{"replicate", `columns => 'null'`, "columns", nil},
		{"replicate", `columns => NULL`, "columns", nil},
		{"replicate", `columns => NULL::jsonb`, "columns", nil},
	}
	for _, tt := range tests {
		q := fmt.Sprintf(`SELECT * FROM %s('s', 'p', %s)`, tt.fn, tt.arg)
		t.Run(tt.arg, func(t *testing.T) {
			args, err := bind(t, q)
			if err != nil {
				t.Fatalf("Bind(%q): %v", q, err)
			}
			if got := args[tt.param]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("%s = %#v (%T), want %#v (%T)", tt.param, got, got, tt.want, tt.want)
			}
		})
	}
}

func TestBindParams(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		oids   []uint32
		params []any
		want   sql.Args // the entries to check
	}{
		{"positional", `SELECT * FROM replicate($1, $2)`, []uint32{25, 25},
			[]any{"s", "p"}, sql.Args{"slot_name": "s", "pub_name": "p"}},
		{"named", `SELECT * FROM replicate(slot_name => $1, pub_name => $2, target_batch_size => $3, flush_slot => $4, include_columns => $5)`,
			[]uint32{25, 25, 23, 16, 3802},
			[]any{"s", "p", int32(5), false, `{"orders": ["id"]}`},
			sql.Args{"target_batch_size": int64(5), "flush_slot": false, "include_columns": map[string]any{"orders": []any{"id"}}}},
		{"text forms", `SELECT * FROM replicate($1, $2, target_batch_size => $3, flush_slot => $4, columns => $5)`,
			[]uint32{25, 25, 23, 16, 3802},
			[]any{[]byte("s"), "p", "77", "off", []byte("\x01{}")},
			sql.Args{"slot_name": "s", "target_batch_size": int64(77), "flush_slot": false, "columns": map[string]any{}}},
		{"go numbers", `SELECT * FROM replicate($1, $2, target_batch_size => $3)`, []uint32{25, 25, 23},
			[]any{"s", "p", float64(9)}, sql.Args{"target_batch_size": int64(9)}},
		{"decoded json", `SELECT * FROM replicate($1, $2, columns => $3)`, []uint32{25, 25, 3802},
			[]any{"s", "p", map[string]any{"t": map[string]any{}}}, sql.Args{"columns": map[string]any{"t": map[string]any{}}}},
		{"nulls", `SELECT * FROM replicate('s', 'p', dataset_name => $1, columns => $2)`, []uint32{25, 3802},
			[]any{nil, nil}, sql.Args{"dataset_name": nil, "columns": nil}},
		{"gap", `SELECT * FROM replicate($2, $4)`, []uint32{0, 25, 0, 25},
			[]any{"unused", "s", 1, "p"}, sql.Args{"slot_name": "s", "pub_name": "p"}},
		{"reused", `SELECT * FROM drop_replication($1, $1)`, []uint32{25},
			[]any{"x"}, sql.Args{"slot_name": "x", "pub_name": "x"}},
		{"cast types", `SELECT * FROM replicate($1::varchar, $2, target_batch_size => $3::bigint)`, []uint32{1043, 25, 20},
			[]any{"s", "p", int64(10)}, sql.Args{"slot_name": "s", "target_batch_size": int64(10)}},
		{"array slice", `SELECT init_replication($1, $2, table_names => $3)`, []uint32{25, 25, 1009},
			[]any{"s", "p", []string{"a", "b"}}, sql.Args{"table_names": []string{"a", "b"}}},
		{"array single text", `SELECT init_replication($1, $2, table_names => $3)`, []uint32{25, 25, 1009},
			[]any{"s", "p", "orders"}, sql.Args{"table_names": []string{"orders"}}},
		{"array text form", `SELECT init_replication($1, $2, table_names => $3)`, []uint32{25, 25, 1009},
			[]any{"s", "p", `{a,"b c"}`}, sql.Args{"table_names": []string{"a", "b c"}}},
		{"array of any", `SELECT init_replication($1, $2, table_names => $3)`, []uint32{25, 25, 1009},
			[]any{"s", "p", []any{"a"}}, sql.Args{"table_names": []string{"a"}}},
		{"array null", `SELECT init_replication($1, $2, table_names => $3)`, []uint32{25, 25, 1009},
			[]any{"s", "p", nil}, sql.Args{"table_names": nil}},
		{"array elements", `SELECT init_replication('s', 'p', table_names => ARRAY[$1, $2])`, []uint32{25, 25},
			[]any{"a", "b"}, sql.Args{"table_names": []string{"a", "b"}}},
		{"text cast to array", `SELECT init_replication('s', 'p', table_names => $1::text)`, []uint32{25},
			[]any{"{a,b}"}, sql.Args{"table_names": []string{"{a,b}"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			call, err := mustCatalog(t).Classify(tt.query)
			if err != nil || call == nil {
				t.Fatalf("Classify(%q) = %v, %v", tt.query, call, err)
			}
			if got := call.ParamOIDs(); !reflect.DeepEqual(got, tt.oids) {
				t.Errorf("ParamOIDs = %v, want %v", got, tt.oids)
			}
			args, err := call.Bind(tt.params)
			if err != nil {
				t.Fatalf("Bind: %v", err)
			}
			if len(args) != len(call.Function.Params) {
				t.Errorf("Args has %d entries, want one per parameter (%d)", len(args), len(call.Function.Params))
			}
			for k, want := range tt.want {
				if got := args[k]; !reflect.DeepEqual(got, want) {
					t.Errorf("%s = %#v, want %#v", k, got, want)
				}
			}
		})
	}
}

func TestBindErrors(t *testing.T) {
	tests := []struct {
		name   string
		query  string
		params []any
		code   string
	}{
		{"too few", `SELECT * FROM replicate($1, $2)`, []any{"s"}, "08P01"},
		{"too many", `SELECT * FROM replicate($1, 'p')`, []any{"s", "x"}, "08P01"},
		{"bool for text", `SELECT * FROM replicate($1, 'p')`, []any{true}, "42804"},
		{"slice for text", `SELECT * FROM replicate($1, 'p')`, []any{[]string{"s"}}, "42804"},
		{"unsupported Go type", `SELECT * FROM replicate($1, 'p')`, []any{struct{}{}}, "42804"},
		{"bad integer", `SELECT * FROM replicate('s', 'p', target_batch_size => $1)`, []any{"lots"}, "22P02"},
		{"integer out of range", `SELECT * FROM replicate('s', 'p', target_batch_size => $1)`, []any{int64(1) << 40}, "22003"},
		{"bigint cast out of range", `SELECT * FROM replicate('s', 'p', target_batch_size => $1::bigint)`, []any{int64(3e9)}, "22003"},
		{"fraction", `SELECT * FROM replicate('s', 'p', target_batch_size => $1)`, []any{2.5}, "42804"},
		{"huge unsigned", `SELECT * FROM replicate('s', 'p', target_batch_size => $1)`, []any{uint64(1) << 63}, "42804"},
		{"bad boolean", `SELECT * FROM replicate('s', 'p', flush_slot => $1)`, []any{"perhaps"}, "22P02"},
		{"bad json", `SELECT * FROM replicate('s', 'p', columns => $1)`, []any{"{"}, "22P02"},
		{"json array", `SELECT * FROM replicate('s', 'p', columns => $1)`, []any{"[1]"}, "22023"},
		{"bad array text", `SELECT init_replication('s', 'p', table_names => $1)`, []any{`{"a}`}, "22P02"},
		{"number elements", `SELECT init_replication('s', 'p', table_names => $1)`, []any{[]any{1}}, "42804"},
		{"null element", `SELECT init_replication('s', 'p', table_names => $1)`, []any{[]*string{nil}}, "22004"},
		{"null in ARRAY", `SELECT init_replication('s', 'p', table_names => ARRAY[$1])`, []any{nil}, "22004"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args, err := bind(t, tt.query, tt.params...)
			if args != nil {
				t.Errorf("Bind returned Args %v with an error", args)
			}
			wantCode(t, err, tt.code)
		})
	}
}

// TestBindConcurrent binds one Call from many goroutines, as sessions
// sharing a prepared statement would; run with -race.
func TestBindConcurrent(t *testing.T) {
	call, err := mustCatalog(t).Classify(`SELECT * FROM init_replication($1, 'p', table_names => $2)`)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 100 {
				slot := fmt.Sprintf("s%d_%d", i, j)
				args, err := call.Bind([]any{slot, []string{"t"}})
				if err != nil {
					t.Error(err)
					return
				}
				args["table_names"].([]string)[0] = "mutated"
				if args["slot_name"] != slot || args["schema_name"] != "public" {
					t.Errorf("Args = %v", args)
					return
				}
			}
		}()
	}
	wg.Wait()
}
