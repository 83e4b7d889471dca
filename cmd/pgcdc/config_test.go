package main_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/pgcdc/pgcdc/internal/pgcdctest"
	"github.com/pgcdc/pgcdc/internal/pgtest"
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
		"PGCDC_DUCKDB_MEMORY_LIMIT=lots",
		"PGCDC_DUCKDB_MEMORY_LIMIT=0",
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

// --source and --password on the command line are readable by every local
// user (ps): pgcdc says so at start-up, and names the variable to use,
// without logging the secret.
func TestServeWarnsAboutSecretsOnCommandLine(t *testing.T) {
	const password = "cmdline-pw-4711"
	srv := pgcdctest.Start(t, pgcdctest.Options{
		Source:   source.DSN(""),
		Password: password,
		Extra:    []string{"--source", source.DSN(""), "--password", password},
	})
	logs := srv.Logs()
	for _, want := range []string{
		`"message":"--source was given on the command line, where other local users can read it with ps; set PGCDC_SOURCE instead"`,
		`"message":"--password was given on the command line, where other local users can read it with ps; set PGCDC_PASSWORD instead"`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("no warning %s in the logs:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, password) || strings.Contains(logs, pgtest.Password) {
		t.Errorf("a secret is in the logs:\n%s", logs)
	}

	// Secrets in the environment are what the warning asks for.
	quiet := pgcdctest.Start(t, pgcdctest.Options{Source: source.DSN(""), Password: password})
	if logs := quiet.Logs(); strings.Contains(logs, "was given on the command line") {
		t.Errorf("warned about secrets passed in the environment:\n%s", logs)
	}
}

// The README's first command is the one people copy: the demo, which
// needs no source. Every serve command it shows passes the source, and its
// password, in the environment. CI runs the line after
// "# Run the tests", which must stay exactly as it is.
func TestReadmeFirstCommandKeepsSecretsOutOfArgs(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "```sh\n")
	block, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("README.md has no sh code block")
	}
	var commands []string
	for line := range strings.SplitSeq(strings.TrimSpace(block), "\n") {
		if !strings.HasPrefix(line, "#") {
			commands = append(commands, line)
		}
	}
	if len(commands) != 2 {
		t.Fatalf("the first code block has %d commands, want 2 (run pgcdc, run the tests):\n%s", len(commands), block)
	}
	// The first command is the demo, which takes no source; the serve
	// command that follows it in the README passes its source, and any
	// password, in the environment.
	if run := commands[0]; run != "go run ./cmd/pgcdc demo" {
		t.Errorf("the run command is %q, want go run ./cmd/pgcdc demo", run)
	}
	var serves int
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "|") || !strings.Contains(line, "pgcdc serve") || !strings.Contains(line, "://") {
			continue
		}
		serves++
		if !strings.Contains(line, "PGCDC_SOURCE=") || strings.Contains(line, "--source") || strings.Contains(line, "--password") {
			t.Errorf("README runs serve with a connection string outside PGCDC_SOURCE: %q", line)
		}
	}
	if serves == 0 {
		t.Error("README never shows how to run pgcdc serve against a source")
	}
	test := exec.Command("awk", `/^# Run the tests/{getline; print; exit}`, "../../README.md")
	got, err := test.Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := "go test -race -count=1 -timeout 25m ./...\n"; string(got) != want || commands[1]+"\n" != want {
		t.Errorf("the test command is %q, want %q", got, want)
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
		"set PGCDC_SOURCE and PGCDC_PASSWORD rather than --source and --password",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pgcdc serve --help does not mention %s:\n%s", want, out)
		}
	}
}
