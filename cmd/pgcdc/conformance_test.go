package main_test

import (
	"testing"
)

// The destination conformance suite: every replication scenario runs
// against every destination, as TestConformance/<destination>/<scenario>.
// A destination passes when all of them pass; what each guarantees is
// docs/semantics.md.
//
// A scenario is a script in testdata/conformance (script_test.go). It gets
// the destination under test (destinations_test.go) and starts its own
// fresh source database and replica.
type scenario struct {
	name string
	run  func(t *testing.T, d *destination)
}

func TestConformance(t *testing.T) {
	scenarios := scriptScenarios(t)
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
