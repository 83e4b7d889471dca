package main_test

import (
	"testing"
)

// The destination conformance suite: every replication scenario runs
// against every destination, as TestConformance/<destination>/<scenario>.
// A destination passes when all of them pass; what each guarantees is
// docs/semantics.md.
//
// A scenario is a script in testdata/conformance (script_test.go), or a Go
// function in the table below where it needs more than a script says:
// timing, values carried from one step to the next, processes killed. Both
// get the destination under test (destinations_test.go) and start their own
// fresh source database and replica.
type scenario struct {
	name string
	run  func(t *testing.T, d *destination)
}

// goScenarios are the scenarios written in Go, cheapest first.
var goScenarios = []scenario{
	{"end_to_end", endToEnd},
	{"status_and_drop", statusAndDrop},
	{"reset", reset},
	{"types", types},
	{"new_source_is_refused", newSourceIsRefused},
	{"table_names_with_dots", tableNamesWithDots},
	{"dropped_replica_table_is_detected", droppedReplicaTableIsDetected},
	{"failed_init_leaves_nothing", failedInitLeavesNothing},
	{"damaged_state_is_refused", damagedStateIsRefused},
	{"only_what_pgcdc_created", onlyWhatPgcdcCreated},
	{"concurrent_replicate", concurrentReplicate},
	{"long_step_keeps_stream_alive", longStepKeepsStreamAlive},
	{"memory_bounded_by_bytes", memoryBoundedByBytes},
	{"big_transaction", bigTransaction},
	{"faults_exactly_once", faultsExactlyOnce},
}

func TestConformance(t *testing.T) {
	scenarios := append(scriptScenarios(t), goScenarios...)
	for _, d := range destinations {
		t.Run(d.name, func(t *testing.T) {
			if reason := d.skip(); reason != "" {
				t.Skip(reason)
			}
			for _, s := range scenarios {
				t.Run(s.name, func(t *testing.T) { s.run(t, d) })
			}
		})
	}
}
