package main_test

import (
	"strings"
	"testing"
)

// An environment value that does not parse stops pgcdc at start-up, naming
// the variable, instead of leaving the setting at its default.
func TestServeRejectsInvalidEnvironment(t *testing.T) {
	for _, env := range []string{
		"PGCDC_MAX_CONNECTIONS=lots",
		"PGCDC_MAX_CONNECTIONS=0",
		"PGCDC_MAX_MESSAGE_SIZE=1MB",
		"PGCDC_IDLE_SESSION_TIMEOUT=5",
		"PGCDC_SHUTDOWN_GRACE=soon",
	} {
		t.Run(env, func(t *testing.T) {
			t.Parallel()
			name, _, _ := strings.Cut(env, "=")
			out := runServe(t, []string{"PGCDC_SOURCE=postgres://x@127.0.0.1:1/x", env}, "--listen", "127.0.0.1:0").wantStartFailure(t)
			if !strings.Contains(out, name) {
				t.Errorf("the error does not name %s:\n%s", name, out)
			}
		})
	}
}
