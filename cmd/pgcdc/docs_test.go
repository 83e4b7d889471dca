package main_test

import (
	"os"
	"os/exec"
	"testing"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// TestFunctionDocsUpToDate keeps docs/functions.md equal to what the
// catalog declares. Regenerate with: go run ./cmd/pgcdc docs > docs/functions.md
func TestFunctionDocsUpToDate(t *testing.T) {
	bin, err := pgcdctest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	want, err := exec.Command(bin, "docs").Output()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../docs/functions.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatal("docs/functions.md is out of date: run go run ./cmd/pgcdc docs > docs/functions.md")
	}
}
