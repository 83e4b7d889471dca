package duckdb

import (
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// BenchmarkConvert is the per-value rewrite of source text into the form
// DuckDB casts from, for the types that need one. Types DuckDB reads as
// Postgres writes them have no converter and cost nothing here.
func BenchmarkConvert(b *testing.B) {
	for _, c := range []struct {
		name string
		col  replica.Column
		v    string
	}{
		{"timestamptz", replica.Column{TypeOID: oidTimestamptz}, "2024-03-15 12:34:56.789+00"},
		{"interval", replica.Column{TypeOID: oidInterval}, "1 year 2 mons 3 days 04:05:06.789"},
		{"int4[]", replica.Column{TypeOID: 1007, ElemOID: 23, Dims: 1}, "{1,2,3,4,5,6,7,8}"},
		{"text[]", replica.Column{TypeOID: 1009, ElemOID: 25, Dims: 1}, `{alpha,"b c","d\"e",NULL}`},
	} {
		conv := converterFor(c.col)
		if conv == nil {
			b.Fatalf("%s: no converter", c.name)
		}
		v := []byte(c.v)
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				if _, err := conv(v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
