package main_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// typeCase is one value: its Postgres type and literal, the DuckDB type it
// must land as, and a DuckDB expression for the same value written by hand,
// independent of pgcdc's conversion code. A destination that keeps the
// source's types (sourceTypes) is checked against the source itself.
type typeCase struct {
	pgType, pgValue string
	duckType        string
	duckValue       string
	asText          bool // compare CAST(... AS VARCHAR): JSON keeps its text
}

var typeCases = []typeCase{
	{"bool", "true", "BOOLEAN", "true", false},
	{"int2", "-32768", "SMALLINT", "-32768", false},
	{"int4", "2147483647", "INTEGER", "2147483647", false},
	{"int8", "-9223372036854775808", "BIGINT", "-9223372036854775808", false},
	{"float4", "'NaN'", "FLOAT", "'NaN'::FLOAT", false},
	{"float4", "1.5", "FLOAT", "1.5::FLOAT", false},
	{"float8", "'-Infinity'", "DOUBLE", "'-Infinity'::DOUBLE", false},
	{"float8", "0.1", "DOUBLE", "0.1::DOUBLE", false},
	{"float8", "1e-300", "DOUBLE", "1e-300::DOUBLE", false},
	{"numeric(12,2)", "-1234567890.12", "DECIMAL(12,2)", "-1234567890.12::DECIMAL(12,2)", false},
	{"numeric", "123456789012345678901234567890.123456789012345", "VARCHAR", "'123456789012345678901234567890.123456789012345'", false},
	{"numeric", "'NaN'", "VARCHAR", "'NaN'", false},
	{"numeric", "'-Infinity'", "VARCHAR", "'-Infinity'", false},
	{"text", "'snow ☃ \"q\" ''s'' tab\tnl\nbs\\ end'", "VARCHAR", "'snow ☃ \"q\" ''s'' tab' || chr(9) || 'nl' || chr(10) || 'bs\\ end'", false},
	{"varchar(5)", "'abc'", "VARCHAR", "'abc'", false},
	{"char(5)", "'ab'", "VARCHAR", "'ab   '", false},
	{"name", "'a_name'", "VARCHAR", "'a_name'", false},
	{"bytea", `'\x00ff41'`, "BLOB", "unhex('00ff41')", false},
	{"bytea", `''`, "BLOB", "''::BLOB", false},
	{"date", "'2024-02-29'", "DATE", "DATE '2024-02-29'", false},
	{"date", "'0044-03-15 BC'", "DATE", "CAST('-0043-03-15' AS DATE)", false},
	{"date", "'infinity'", "DATE", "'infinity'::DATE", false},
	{"time", "'24:00:00'", "TIME", "'24:00:00'::TIME", false},
	{"time(3)", "'01:02:03.456'", "TIME", "'01:02:03.456'::TIME", false},
	{"timetz", "'12:00:00+05:30'", "TIME WITH TIME ZONE", "'12:00:00+05:30'::TIMETZ", false},
	{"timestamp", "'2024-01-02 03:04:05.123456'", "TIMESTAMP", "TIMESTAMP '2024-01-02 03:04:05.123456'", false},
	{"timestamp", "'0044-03-15 10:00:00 BC'", "TIMESTAMP", "CAST('-0043-03-15 10:00:00' AS TIMESTAMP)", false},
	{"timestamp", "'-infinity'", "TIMESTAMP", "'-infinity'::TIMESTAMP", false},
	{"timestamptz(3)", "'2024-01-02 03:04:05.123+05:30'", "TIMESTAMP WITH TIME ZONE", "'2024-01-01 21:34:05.123+00'::TIMESTAMPTZ", false},
	{"timestamptz", "'infinity'", "TIMESTAMP WITH TIME ZONE", "'infinity'::TIMESTAMPTZ", false},
	{"interval", "'1 year 2 mons 3 days 04:05:06.5'", "INTERVAL", "to_months(14) + to_days(3) + to_microseconds(14706500000)", false},
	{"interval", "'-1 days +02:03:00'", "INTERVAL", "to_days(-1) + to_microseconds(7380000000)", false},
	{"interval", "'-100:00:00.000001'", "INTERVAL", "to_microseconds(-360000000001)", false},
	{"uuid", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'", "UUID", "'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID", false},
	{"json", `'{"b":1,  "a":[1,2]}'`, "JSON", `'{"b":1,  "a":[1,2]}'`, true},
	{"jsonb", `'{"b":1,"a":[1,2]}'`, "JSON", `'{"a": [1, 2], "b": 1}'`, true},
	{"inet", "'192.168.1.5/24'", "VARCHAR", "'192.168.1.5/24'", false},
	{"cidr", "'10.0.0.0/8'", "VARCHAR", "'10.0.0.0/8'", false},
	{"macaddr", "'08:00:2b:01:02:03'", "VARCHAR", "'08:00:2b:01:02:03'", false},
	{"bit(4)", "B'0101'", "BIT", "'0101'::BIT", false},
	{"varbit", "B'1'", "BIT", "'1'::BIT", false},
	{"money", "12.34", "VARCHAR", "'$12.34'", false},
	{"xml", "'<a>1</a>'", "VARCHAR", "'<a>1</a>'", false},
	{"oid", "4294967295", "UINTEGER", "4294967295::UINTEGER", false},
	{"tsvector", "'a fat cat'", "VARCHAR", `'''a'' ''cat'' ''fat'''`, false},
	{"int4range", "'[1,5)'", "VARCHAR", "'[1,5)'", false},
	{"tstzrange", "'[2024-01-01 00:00:00+00,)'", "VARCHAR", `'["2024-01-01 00:00:00+00",)'`, false},
	{"int4[]", "'{1,NULL,3}'", "INTEGER[]", "[1, NULL, 3]", false},
	{"int4[][]", "'{{1,2},{3,4}}'", "INTEGER[][]", "[[1, 2], [3, 4]]", false},
	{"text[]", `'{"a,b","q\"x",NULL,"NULL","", " sp "}'`, "VARCHAR[]", `['a,b', 'q"x', NULL, 'NULL', '', ' sp ']`, false},
	{"text[]", "'{}'", "VARCHAR[]", "[]::VARCHAR[]", false},
	{"numeric(10,2)[]", "'{1.50,NULL}'", "DECIMAL(10,2)[]", "[1.50, NULL]::DECIMAL(10,2)[]", false},
	{"date[]", `'{2024-01-01,"0044-03-15 BC"}'`, "DATE[]", "[DATE '2024-01-01', CAST('-0043-03-15' AS DATE)]", false},
	{"bytea[]", `ARRAY['\x0102'::bytea, NULL]`, "BLOB[]", "[unhex('0102'), NULL]", false},
	{"bool[]", "'{t,f}'", "BOOLEAN[]", "[true, false]", false},
	{"jsonb[]", `ARRAY['{"a":1}'::jsonb, '[2]']`, "JSON[]", `['{"a":1}'::JSON, '[2]'::JSON]`, true},
	{"interval[]", "ARRAY['1 day'::interval, '-1 mons']", "INTERVAL[]", "[to_days(1), to_months(-1)]", false},
	{"uuid[]", "ARRAY['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid]", "UUID[]", "['a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::UUID]", false},
	{"float8[]", "'{NaN,Infinity,-1.5}'", "DOUBLE[]", "['NaN'::DOUBLE, 'Infinity'::DOUBLE, -1.5]", false},
	{"timestamptz[]", `'{"2024-01-02 03:04:05+00"}'`, "TIMESTAMP WITH TIME ZONE[]", "['2024-01-02 03:04:05+00'::TIMESTAMPTZ]", false},
	{"mood", "'happy'", "VARCHAR", "'happy'", false},
	{"mood[]", "'{sad,happy}'", "VARCHAR[]", "['sad', 'happy']", false},
	{"posint", "5", "INTEGER", "5", false},
	{"price", "9.99", "DECIMAL(5,2)", "9.99::DECIMAL(5,2)", false},
	{"pair", "ROW(1, 'a b')", "VARCHAR", `'(1,"a b")'`, false},
	{"box[]", `'{(1,1),(0,0);(2,2),(1,1)}'`, "VARCHAR", `'{(1,1),(0,0);(2,2),(1,1)}'`, false},
	{"numeric(3,-2)", "12345", "VARCHAR", "'12300'", false},
}

// types replicates every case through the snapshot (row 1) and the stream
// (row 2), plus a row of NULLs in every column (row 3), and checks each
// column's type and values by the destination's typeRule.
func types(t *testing.T, d *destination) {
	ctx := testContext(t, 3*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, `CREATE TYPE mood AS ENUM ('sad', 'happy');
		CREATE DOMAIN posint AS int4 CHECK (VALUE > 0);
		CREATE DOMAIN price AS numeric(5,2);
		CREATE TYPE pair AS (n int, s text)`)
	var cols, vals []string
	for i, c := range typeCases {
		cols = append(cols, fmt.Sprintf("c%d %s", i, c.pgType))
		vals = append(vals, c.pgValue)
	}
	mustExec(ctx, t, src, fmt.Sprintf("CREATE TABLE types (id int PRIMARY KEY, %s)", strings.Join(cols, ", ")))
	insert := fmt.Sprintf("INSERT INTO types VALUES (%%d, %s)", strings.Join(vals, ", "))
	mustExec(ctx, t, src, fmt.Sprintf(insert, 1))

	r := d.start(ctx, t, pgcdctest.Options{Source: dsn})
	rep := r.data
	mustExec(ctx, t, r.pgcdc, "SELECT * FROM init_replication('ty', 'ty_pub', table_names => 'types', persist_snapshots => true)")
	mustExec(ctx, t, src, fmt.Sprintf(insert, 2))
	mustExec(ctx, t, src, "INSERT INTO types (id) VALUES (3)")
	callReplicate(ctx, t, r.pgcdc, "SELECT * FROM replicate('ty', 'ty_pub')")

	repTypes := map[string]string{}
	for _, c := range rowsOf(ctx, t, rep, d.columnsSQL, "public", "types") {
		name, typ, _ := strings.Cut(c, "|")
		repTypes[name] = typ
	}
	if d.types == sourceTypes {
		// Both sides print values the same way only under the same settings.
		for _, conn := range []*pgx.Conn{src, rep} {
			mustExec(ctx, t, conn, "SET TimeZone = 'UTC'; SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3")
		}
	}
	path := map[int]string{1: "snapshot", 2: "stream"}
	for i, c := range typeCases {
		col := fmt.Sprintf("c%d", i)
		switch d.types {
		case mappedTypes:
			if typ := repTypes[col]; typ != c.duckType {
				t.Errorf("%s %s: stored as %q, want %s", col, c.pgType, typ, c.duckType)
				continue
			}
			cmp := fmt.Sprintf("%s IS NOT DISTINCT FROM (%s)", col, c.duckValue)
			if c.asText {
				cmp = fmt.Sprintf("CAST(%s AS VARCHAR) IS NOT DISTINCT FROM CAST((%s) AS VARCHAR)", col, c.duckValue)
			}
			for _, id := range []int{1, 2} {
				var ok bool
				var got string
				q := fmt.Sprintf("SELECT %s, COALESCE(CAST(%s AS VARCHAR), 'NULL') FROM public.types WHERE id = %d", cmp, col, id)
				if err := rep.QueryRow(ctx, q).Scan(&ok, &got); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				if !ok {
					t.Errorf("%s %s = %s via the %s: replica holds %q, want %s", col, c.pgType, c.pgValue, path[id], got, c.duckValue)
				}
			}
		case sourceTypes:
			var want string
			if err := src.QueryRow(ctx, `SELECT format_type(atttypid, atttypmod) FROM pg_attribute
				WHERE attrelid = 'public.types'::regclass AND attname = $1`, col).Scan(&want); err != nil {
				t.Fatal(err)
			}
			if typ := repTypes[col]; typ != want {
				t.Errorf("%s %s: stored as %q, want the source's type %s", col, c.pgType, typ, want)
				continue
			}
			for _, id := range []int{1, 2} {
				q := fmt.Sprintf("SELECT CAST(%s AS VARCHAR) FROM public.types WHERE id = %d", col, id)
				var want, got *string
				if err := src.QueryRow(ctx, q).Scan(&want); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				if err := rep.QueryRow(ctx, q).Scan(&got); err != nil {
					t.Fatalf("%s: %v", q, err)
				}
				if want == nil || got == nil || *got != *want {
					t.Errorf("%s %s = %s via the %s: replica prints %s, the source %s", col, c.pgType, c.pgValue, path[id], show(got), show(want))
				}
			}
		}
		var null bool
		if err := rep.QueryRow(ctx, fmt.Sprintf("SELECT %s IS NULL FROM public.types WHERE id = 3", col)).Scan(&null); err != nil || !null {
			t.Errorf("%s %s: NULL did not replicate as NULL (%v)", col, c.pgType, err)
		}
	}
}

// show renders a nullable text for a message.
func show(s *string) string {
	if s == nil {
		return "NULL"
	}
	return fmt.Sprintf("%q", *s)
}

// TestUnrepresentableValuesFailLoudly: a value the chosen DuckDB type cannot
// hold stops the call with an error naming it; nothing is rounded or
// dropped, and a column hint lets the user choose a type that holds it.
// The limit is DuckDB's own (DECIMAL has no NaN), so this is not a
// conformance scenario.
func TestUnrepresentableValuesFailLoudly(t *testing.T) {
	ctx := testContext(t, 2*time.Minute)
	dsn, src := newSourceDB(ctx, t)
	mustExec(ctx, t, src, `CREATE TABLE n (id int PRIMARY KEY, v numeric(10,2)); INSERT INTO n VALUES (1, 1.5)`)
	srv := pgcdctest.Start(t, pgcdctest.Options{Source: dsn})
	rep := srv.Connect(ctx, t)
	mustExec(ctx, t, rep, "SELECT * FROM init_replication('nan', 'nan_pub', table_names => 'n', persist_snapshots => true)")
	mustExec(ctx, t, src, "INSERT INTO n VALUES (2, 'NaN')")
	_, err := rep.Exec(ctx, "SELECT * FROM replicate('nan', 'nan_pub')")
	if err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Fatalf("NaN into DECIMAL: %v", err)
	}
	// With a text hint for the column the same data replicates exactly.
	mustExec(ctx, t, rep, "SELECT * FROM drop_replication('nan', 'nan_pub', drop_tables => true)")
	mustExec(ctx, t, rep, `SELECT * FROM init_replication('nan', 'nan_pub', table_names => 'n', persist_snapshots => true,
		columns => '{"n": {"v": {"data_type": "text"}}}')`)
	got := rowsOf(ctx, t, rep, "SELECT id, v FROM n ORDER BY id")
	if strings.Join(got, ";") != "1|1.50;2|NaN" {
		t.Fatalf("with a text hint: %v", got)
	}
}
