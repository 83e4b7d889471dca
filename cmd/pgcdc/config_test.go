package main_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
)

// An environment value that does not parse stops pgcdc at start-up, naming
// the variable, instead of leaving the setting at its default.
func TestServeRejectsInvalidEnvironment(t *testing.T) {
	for _, env := range []string{
		"PGCDC_MAX_CONNECTIONS=lots",
		"PGCDC_MAX_CONNECTIONS=0",
		"PGCDC_MAX_MESSAGE_SIZE=1MB",
		"PGCDC_MAX_UNAUTHENTICATED_CONNECTIONS=1.5",
		"PGCDC_MAX_UNAUTHENTICATED_CONNECTIONS=0",
		"PGCDC_IDLE_SESSION_TIMEOUT=5",
		"PGCDC_SHUTDOWN_GRACE=soon",
		"PGCDC_AUTHENTICATION_TIMEOUT=10",
		"PGCDC_AUTHENTICATION_TIMEOUT=0s",
		"PGCDC_AUTH_FAILURE_DELAY=-1s",
		"PGCDC_TLS_REQUIRED=maybe",
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

func TestServeHelpDocumentsAuthentication(t *testing.T) {
	bin, err := pgcdctest.Binary()
	if err != nil {
		t.Fatal(err)
	}
	out, _ := exec.Command(bin, "serve", "--help").CombinedOutput()
	for _, want := range []string{
		"--tls-required", "PGCDC_TLS_REQUIRED",
		"--authentication-timeout", "PGCDC_AUTHENTICATION_TIMEOUT", `default "10s"`,
		"--max-unauthenticated-connections", "PGCDC_MAX_UNAUTHENTICATED_CONNECTIONS", `default "32"`, "FATAL 53300",
		"--auth-failure-delay", "PGCDC_AUTH_FAILURE_DELAY", `default "1s"`, "per delay",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pgcdc serve --help does not mention %s:\n%s", want, out)
		}
	}
}
