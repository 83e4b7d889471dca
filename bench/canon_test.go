package bench_test

import (
	"math/big"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// TestCanon checks the rendering TestCeilings hashes replicas with: the same
// value sent differently by DuckDB (through pgcdc) and Postgres renders the
// same, and different values do not.
func TestCanon(t *testing.T) {
	num := func(i int64, exp int32) pgtype.Numeric {
		return pgtype.Numeric{Int: big.NewInt(i), Exp: exp, Valid: true}
	}
	berlin := time.FixedZone("CET", 3600)
	same := []struct{ a, b any }{
		{num(150, -2), num(15, -1)},                                // 1.50 and 1.5
		{num(1, 3), num(1000, 0)},                                  // 1e3 and 1000
		{[]any{"a", "b"}, `["a","b"]`},                             // text[] from Postgres, a DuckDB list sent as text
		{map[string]any{"g": 1.0, "s": "v"}, `{"s": "v", "g": 1}`}, // jsonb, and JSON text in another key order
		{time.Date(2026, 1, 1, 1, 0, 0, 0, berlin), time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)},
		{int32(7), int64(7)},
		{nil, nil},
	}
	for _, c := range same {
		if canon(c.a) != canon(c.b) {
			t.Errorf("canon(%#v) = %q, canon(%#v) = %q; want them equal", c.a, canon(c.a), c.b, canon(c.b))
		}
	}
	differ := []struct{ a, b any }{
		{num(150, -2), num(151, -2)},
		{[]any{"a", "b"}, `["a","c"]`},
		{"x", []byte("x")},
		{nil, "\\N"},
		{"", nil},
		{map[string]any{"g": 1.0}, map[string]any{"g": "1"}},
	}
	for _, c := range differ {
		if canon(c.a) == canon(c.b) {
			t.Errorf("canon(%#v) = canon(%#v) = %q; want them different", c.a, c.b, canon(c.a))
		}
	}
}
