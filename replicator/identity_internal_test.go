package replicator

import (
	"strings"
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// TestLaterTimeline: a replica may follow its source onto a later timeline
// only when its position is before the point where its own timeline ended.
func TestLaterTimeline(t *testing.T) {
	// The history file of timeline 3: timeline 1 ended at 0/3000158,
	// timeline 2 at 0/5000000.
	history := []byte("1\t0/3000158\tno recovery target specified\n\n2\t0/5000000\tbefore 2026-11-30 10:00:00+00\n")
	for _, c := range []struct {
		stored int32
		lsn    string
		want   string // "" when accepted
	}{
		{1, "0/3000158", ""},
		{1, "0/3000000", ""},
		{1, "0/3000159", "left timeline 1 at 0/3000158"},
		{2, "0/4FFFFFF", ""},
		{2, "0/5000001", "left timeline 2 at 0/5000000"},
		{4, "0/1000000", "does not descend from the replica's timeline 4"},
	} {
		lsn, err := parseLSN(c.lsn)
		if err != nil {
			t.Fatal(err)
		}
		st := replica.State{LSN: lsn, Source: replica.SourceIdentity{SystemID: "1", Timeline: c.stored}}
		why, err := laterTimeline(st, 3, history)
		if err != nil {
			t.Fatal(err)
		}
		if (c.want == "") != (why == "") || !strings.Contains(why, c.want) {
			t.Errorf("stored timeline %d at %s: got %q, want %q", c.stored, c.lsn, why, c.want)
		}
	}
	if _, err := laterTimeline(replica.State{Source: replica.SourceIdentity{Timeline: 1}}, 3, []byte("1\tnot-an-lsn\tx\n")); err == nil {
		t.Error("a malformed history file was accepted")
	}
}
