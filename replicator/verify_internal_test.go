package replicator

import (
	"slices"
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

func TestDisplayKey(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{`"1"`, "1"},
		{`"a""b"`, `a"b`},
		{`"x,""y","1"`, `(x,"y,1)`},
		{`n`, "NULL"},
		{`"a",n,""`, "(a,NULL,)"},
	} {
		if got := displayKey(c.in); got != c.want {
			t.Errorf("displayKey(%s) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestDifferingKeys(t *testing.T) {
	s := func(v ...string) []*string {
		out := make([]*string, len(v))
		for i := range v {
			out[i] = &v[i]
		}
		return out
	}
	src := [][]*string{s(`"1"`, "h1"), s(`"2"`, "h2"), s(`"3"`, "h3"), s(`"5"`, "h5"), s(`"5"`, "h5")}
	rep := [][]*string{s(`"1"`, "h1"), s(`"2"`, "changed"), s(`"4"`, "h4"), s(`"5"`, "h5")}
	// 2 differs, 3 is missing, 4 is extra, and a row without a key (5)
	// is there once instead of twice.
	if got, want := differingKeys(src, rep), []string{"2", "3", "4", "5"}; !slices.Equal(got, want) {
		t.Fatalf("differingKeys = %q, want %q", got, want)
	}
	if got := differingKeys(src[:1], rep[:1]); len(got) != 0 {
		t.Fatalf("equal rows differ: %q", got)
	}
}

func TestVerifyTables(t *testing.T) {
	st := replica.State{Slot: "s", Tables: []replica.TableState{
		{Source: replica.TableName{Schema: "a", Name: "t"}, Dest: replica.TableName{Schema: "a", Name: "t"}},
		{Source: replica.TableName{Schema: "b", Name: "t"}, Dest: replica.TableName{Schema: "d", Name: "bt"}},
	}}
	if got, err := verifyTables(st, ""); err != nil || len(got) != 2 {
		t.Fatalf("all tables: %v %v", got, err)
	}
	if got, err := verifyTables(st, "b.t"); err != nil || len(got) != 1 || got[0].Source.Schema != "b" {
		t.Fatalf("b.t: %v %v", got, err)
	}
	if got, err := verifyTables(st, "d.bt"); err != nil || len(got) != 1 || got[0].Source.Schema != "b" {
		t.Fatalf("by replica name: %v %v", got, err)
	}
	if _, err := verifyTables(st, "t"); err == nil || err.(interface{ SQLState() string }).SQLState() != CodeInvalidParameter {
		t.Fatalf("an ambiguous name: %v", err)
	}
	if _, err := verifyTables(st, "nope"); err == nil || err.(interface{ SQLState() string }).SQLState() != CodeUndefinedTable {
		t.Fatalf("an unknown name: %v", err)
	}
}
