package sql_test

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pgcdc/pgcdc/sql"
)

// naiveMentions is the pre-filter's specification. Like Postgres folding
// unquoted identifiers, it ignores case for ASCII letters only.
func naiveMentions(c *sql.Catalog, query string) bool {
	lower := strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + 'a' - 'A'
		}
		return r
	}, query)
	for _, fn := range c.Functions {
		if strings.Contains(lower, fn.Name) {
			return true
		}
	}
	return false
}

func TestPrefilter(t *testing.T) {
	c := mustCatalog(t)
	for _, q := range []string{
		"", "r", "replicat", "replicate", "REPLICATE", "xReplicatEx", "init_replicatio", "INIT_REPLICATION(",
		"replication_statu", "pg_replication_slots", "drop_replicatio", "drop_replication", "DROP_replication",
		"replicatereplicate", "rrreplicatepp", "ppp", "select * from t where a = 'ʀeplicate'",
	} {
		if got, want := c.MentionsFunction(q), naiveMentions(c, q); got != want {
			t.Errorf("MentionsFunction(%q) = %v, want %v", q, got, want)
		}
	}
	// Random strings over an alphabet that makes near-misses likely.
	rng := rand.New(rand.NewPCG(1, 2))
	const alphabet = "rRepPElLiIcCaAtTsSuUdDnN_o "
	for range 20000 {
		b := make([]byte, rng.IntN(40))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		// Plant a name now and then, in random case.
		if rng.IntN(4) == 0 {
			name := []byte(c.Functions[rng.IntN(len(c.Functions))].Name)
			for i := range name {
				if rng.IntN(2) == 0 {
					name[i] = strings.ToUpper(string(name[i]))[0]
				}
			}
			at := rng.IntN(len(b) + 1)
			b = append(b[:at], append(name, b[at:]...)...)
		}
		q := string(b)
		if got, want := c.MentionsFunction(q), naiveMentions(c, q); got != want {
			t.Fatalf("MentionsFunction(%q) = %v, want %v", q, got, want)
		}
	}
}
