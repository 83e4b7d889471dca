package replica_test

import (
	"maps"
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

func TestMatchColumns(t *testing.T) {
	for _, c := range []struct {
		name     string
		cols     []replica.Column
		existing map[string]int
		want     map[string]string
	}{
		{"unchanged", []replica.Column{{Name: "a", Num: 1}, {Name: "b", Num: 2}},
			map[string]int{"a": 1, "b": 2, "_pg_lsn": 0}, map[string]string{"a": "a", "b": "b", "_pg_lsn": "_pg_lsn"}},
		{"rename chain b→c, a→b", []replica.Column{{Name: "b", Num: 1}, {Name: "c", Num: 2}},
			map[string]int{"a": 1, "b": 2}, map[string]string{"b": "a", "c": "b"}},
		{"swap", []replica.Column{{Name: "b", Num: 1}, {Name: "a", Num: 2}},
			map[string]int{"a": 1, "b": 2}, map[string]string{"b": "a", "a": "b"}},
		{"dropped and added again under its old name", []replica.Column{{Name: "a", Num: 3}},
			map[string]int{"a": 1}, map[string]string{}},
		{"no attnum recorded", []replica.Column{{Name: "a", Num: 5}, {Name: "b"}},
			map[string]int{"a": 0, "b": 0}, map[string]string{"a": "a", "b": "b"}},
		{"attnum unknown to the engine", []replica.Column{{Name: "a"}, {Name: "b", Num: 2}},
			map[string]int{"a": 4, "b": 2}, map[string]string{"a": "a", "b": "b"}},
	} {
		got := replica.MatchColumns(c.cols, []string{"_pg_lsn"}, c.existing)
		if !maps.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}
}

func TestRewritten(t *testing.T) {
	cols := []replica.Column{
		{Name: "retyped", Num: 1},
		{Name: "kept", Num: 2},
		{Name: "volatile", Num: 3, HasDefault: true},
		{Name: "constant", Num: 4, HasDefault: true, Missing: new(string)},
		{Name: "plain", Num: 5},
	}
	from := map[string]string{"retyped": "retyped", "kept": "kept"}
	changed := func(c replica.Column, old string) bool { return old == "retyped" }
	if got := replica.Rewritten(cols, from, true, changed); len(got) != 2 || got[0] != "retyped" || got[1] != "volatile" {
		t.Errorf("table with rows: %v", got)
	}
	if got := replica.Rewritten(cols, map[string]string{}, false, changed); len(got) != 0 {
		t.Errorf("new table: %v", got)
	}
}
