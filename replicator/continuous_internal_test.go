package replicator

import (
	"reflect"
	"testing"
)

func TestStatsSince(t *testing.T) {
	before := map[string]TableStats{
		"a": {Table: "a", Inserts: 5, Updates: 1, StartLSN: 10, EndLSN: 50},
		"b": {Table: "b", Deletes: 2, StartLSN: 20, EndLSN: 30},
	}
	after := map[string]TableStats{
		"a": {Table: "a", Inserts: 7, Updates: 1, Truncates: 1, StartLSN: 10, EndLSN: 90},
		"b": {Table: "b", Deletes: 2, StartLSN: 20, EndLSN: 30},
		"c": {Table: "c", Inserts: 1, StartLSN: 60, EndLSN: 60},
	}
	got := statsSince(before, after)
	want := []TableStats{
		{Table: "a", Inserts: 2, Truncates: 1, StartLSN: 50, EndLSN: 90},
		{Table: "c", Inserts: 1, StartLSN: 60, EndLSN: 60},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("statsSince:\n got %+v\nwant %+v", got, want)
	}
}

func TestPipelineAskKeepsTheHighest(t *testing.T) {
	p := newPipeline(nil, ReplicateOptions{})
	p.ask(10)
	p.ask(5)
	if p.wanted() != 10 {
		t.Fatalf("wanted %d, want 10", p.wanted())
	}
	var none *pipeline
	if none.wanted() != 0 || none.job(1) != nil {
		t.Fatal("a nil pipeline wants something")
	}
	none.committedAt(1, nil) // must not panic
}
