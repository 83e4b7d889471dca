package sql_test

import (
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/pgcdc/pgcdc/sql"
)

// FuzzClassifyBind feeds arbitrary query text and parameter values through
// Split, Classify and Bind. Nothing may panic, every error must be a
// *pgconn.PgError (the wire layer sends it as an ErrorResponse), and what
// Bind returns must have the Go types Args promises.
func FuzzClassifyBind(f *testing.F) {
	for _, q := range []string{
		`SELECT * FROM replicate('s', 'p')`,
		`SELECT replicate($1, $2, target_batch_size => $3)`,
		`select init_replication('s', 'p', table_names => '{a,"b c"}', include_columns => '{"t": ["c"]}')`,
		`SELECT * FROM init_replication($1, 'p', table_names => ARRAY[$2, 'x']::varchar[])`,
		`/* {"app": "dbt"} */ SELECT r.* FROM pgcdc.replicate('s', 'p') AS r(a, b)`,
		`SELECT 1; SELECT replication_status()`,
	} {
		f.Add(q, "x", int64(1), true, uint8(0))
	}
	c := mustCatalog(f)
	f.Fuzz(func(t *testing.T, query, s string, n int64, b bool, mode uint8) {
		if got, want := c.MentionsFunction(query), naiveMentions(c, query); got != want {
			t.Fatalf("pre-filter says %v, a plain search %v", got, want)
		}
		pieces, err := sql.Split(query)
		checkError(t, "Split", err)
		for _, p := range pieces {
			if strings.TrimSpace(p) != p || p == "" {
				t.Errorf("Split piece %q is not trimmed", p)
			}
		}
		call, err := c.Classify(query)
		checkError(t, "Classify", err)
		if call == nil {
			return
		}
		oids := call.ParamOIDs()
		params := make([]any, len(oids))
		for i, oid := range oids {
			params[i] = paramFor(oid, s, n, b, mode+uint8(i))
		}
		args, err := call.Bind(params)
		checkError(t, "Bind", err)
		if err != nil {
			return
		}
		if len(args) != len(call.Function.Params) {
			t.Fatalf("Args has %d entries for %d parameters", len(args), len(call.Function.Params))
		}
		for _, p := range call.Function.Params {
			checkArg(t, p, args[p.Name])
		}
	})
}

func checkError(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		t.Fatalf("%s error %v is %T, want *pgconn.PgError", what, err, err)
	}
	if len(pgErr.Code) != 5 || pgErr.Message == "" {
		t.Fatalf("%s error lacks a SQLSTATE or message: %+v", what, pgErr)
	}
}

// paramFor picks a value of a Go type the wire layer could produce,
// sometimes the right one for oid and sometimes not.
func paramFor(oid uint32, s string, n int64, b bool, mode uint8) any {
	switch mode % 8 {
	case 0:
		return nil
	case 1:
		return s
	case 2:
		return n
	case 3:
		return b
	case 4:
		return []string{s, s}
	case 5:
		return []byte(s)
	case 6:
		return int32(n)
	}
	switch oid {
	case 16:
		return b
	case 20, 23:
		return n
	case 1009:
		return []string{s}
	}
	return s
}

func checkArg(t *testing.T, p sql.Param, v any) {
	t.Helper()
	if v == nil {
		return
	}
	ok := false
	switch p.Type.Name {
	case "text":
		_, ok = v.(string)
	case "text[]":
		_, ok = v.([]string)
	case "boolean":
		_, ok = v.(bool)
	case "integer":
		i, isInt := v.(int64)
		ok = isInt && i >= math.MinInt32 && i <= math.MaxInt32
	case "bigint":
		_, ok = v.(int64)
	case "jsonb":
		_, ok = v.(map[string]any)
	}
	if !ok {
		t.Fatalf("argument %s (%s) = %#v (%T)", p.Name, p.Type.Name, v, v)
	}
}
