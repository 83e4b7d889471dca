package sql_test

import (
	"testing"

	"github.com/pgcdc/pgcdc/sql"
)

func TestCopiesFromClient(t *testing.T) {
	for q, want := range map[string]bool{
		"COPY t FROM STDIN":                          true,
		"copy t (a, b) from stdin with (format csv)": true,
		"COPY t TO STDOUT":                           false,
		"COPY t FROM '/tmp/f'":                       false,
		"COPY t FROM PROGRAM 'cat'":                  false,
		"SELECT 1":                                   false,
		"COPY t FROM STDIN; SELECT 1":                false,
		"not sql":                                    false,
	} {
		if got := sql.CopiesFromClient(q); got != want {
			t.Errorf("CopiesFromClient(%q) = %v, want %v", q, got, want)
		}
	}
}
