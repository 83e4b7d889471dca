package duckdb_test

import (
	"context"
	"testing"
	"time"

	"github.com/pgcdc/pgcdc/replicator/duckdb"
	"github.com/pgcdc/pgcdc/replicator/replica"
)

// TestVerifyTextMatchesPostgres: values stored in DuckDB render as the
// Postgres text verify_replication compares them with. The expected texts
// are what Postgres 12 and later print (float8out, float4out and the
// canonical forms of replica.PostgresTextExpr).
func TestVerifyTextMatchesPostgres(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := duckdb.Open(ctx, ":memory:")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	vt, err := d.BeginVerify(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer vt.Close()
	float8 := replica.Column{TypeOID: 701}
	float4 := replica.Column{TypeOID: 700}
	for _, c := range []struct {
		col   replica.Column
		value string // a DuckDB literal
		want  string
	}{
		{float8, "3.0", "3"}, {float8, "'-0.0'", "-0"}, {float8, "0.1", "0.1"}, {float8, "1e15", "1e+15"}, {float8, "-1e15", "-1e+15"},
		{float8, "1e16", "1e+16"}, {float8, "123456789012345.0", "123456789012345"}, {float8, "1.5e300", "1.5e+300"},
		{float8, "1e-5", "1e-05"}, {float8, "0.0001", "0.0001"}, {float8, "'nan'", "NaN"}, {float8, "'inf'", "Infinity"},
		{float8, "'-inf'", "-Infinity"}, {float8, "4000000000000000.5", "4.0000000000000005e+15"},
		{float4, "1e6", "1e+06"}, {float4, "1234567", "1.234567e+06"}, {float4, "123456", "123456"}, {float4, "0.1", "0.1"},
		{replica.Column{TypeOID: 1184}, "'2026-01-02 03:04:05.5+02'", "2026-01-02 01:04:05.5"},
		{replica.Column{TypeOID: 1186}, "INTERVAL '1 year 2 months 3 days 04:05:06.5'", "14m3d14706500000us"},
		{replica.Column{TypeOID: 1186}, "INTERVAL '-1 day 02:00:00'", "0m-1d7200000000us"},
		{replica.Column{TypeOID: 17}, "'\\xAB\\x01'::BLOB", "ab01"},
		{replica.Column{TypeOID: 1700, TypeMod: (10<<16 | 2) + 4}, "12.5", "12.50"},
		{replica.Column{TypeOID: 1007, ElemOID: 23, Dims: 1}, "[1, NULL, 3]", `["1",null,"3"]`},
		{replica.Column{TypeOID: 1022, ElemOID: 701, Dims: 2}, "[[1.0, 2.5], [3.0]]", `["1","2.5","3"]`},
	} {
		_, expr := d.TextExprs(c.col, "v")
		rows, err := vt.Strings(ctx, "SELECT "+expr+" FROM (SELECT CAST("+c.value+" AS "+duckType(c.col)+") AS v)")
		if err != nil {
			t.Fatalf("%s: %v", c.value, err)
		}
		if got := *rows[0][0]; got != c.want {
			t.Errorf("%s as %s renders %q, Postgres prints %q", c.value, duckType(c.col), got, c.want)
		}
	}
}

func duckType(c replica.Column) string {
	switch c.TypeOID {
	case 701:
		return "DOUBLE"
	case 700:
		return "FLOAT"
	case 1184:
		return "TIMESTAMPTZ"
	case 1186:
		return "INTERVAL"
	case 17:
		return "BLOB"
	case 1700:
		return "DECIMAL(10,2)"
	case 1007:
		return "INTEGER[]"
	case 1022:
		return "DOUBLE[][]"
	}
	return "VARCHAR"
}
