package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// jdbcJar is where Debian's libpostgresql-jdbc-java puts pgJDBC.
const jdbcJar = "/usr/share/java/postgresql.jar"

// TestClientJDBC runs the client scenario with pgJDBC
// (internal/clients/java/Scenario.java), its prepared statements past the
// prepare threshold so that the driver uses named statements and binary
// results.
func TestClientJDBC(t *testing.T) { forEachClientDestination(t, clientJDBC) }

func clientJDBC(t *testing.T, d clientDestination) {
	java, err := exec.LookPath("java")
	if err != nil {
		requireClient(t, "no java: %v", err)
	}
	jar := os.Getenv("PGCDC_JDBC_JAR")
	if jar == "" {
		jar = jdbcJar
	}
	if _, err := os.Stat(jar); err != nil {
		requireClient(t, "no pgJDBC jar (libpostgresql-jdbc-java, or set PGCDC_JDBC_JAR): %v", err)
	}
	ctx := testContext(t, 3*time.Minute)
	// At trace level pgcdc logs every protocol message, which shows what
	// the driver really did.
	c := startClientSetup(ctx, t, d, "jdbc", "--log-level", "trace")
	// Java runs a single source file directly (JEP 330), so there is no
	// build step.
	cmd := exec.CommandContext(ctx, java, "-cp", jar, "-Xshare:auto", "-XX:TieredStopAtLevel=1",
		filepath.Join(clientsDir(t), "java", "Scenario.java"))
	runScenario(ctx, t, c, cmd)
	c.verify(ctx, t)

	// Past the threshold pgJDBC binds named statements and asks for binary
	// results; make sure that is what was exercised.
	named := regexp.MustCompile(`"Type":"Bind","DestinationPortal":"[^"]*","PreparedStatement":"S_[0-9]+".*"ResultFormatCodes":\[[0-9,]*1[0-9,]*\]`)
	if !named.MatchString(c.srv.Logs()) {
		t.Error("pgJDBC never bound a named statement with binary result formats")
	}
	// With a fetch size it reads a named portal a few rows at a time.
	if !regexp.MustCompile(`"Type":"Execute","Portal":"C_[0-9]+","MaxRows":2`).MatchString(c.srv.Logs()) ||
		!strings.Contains(c.srv.Logs(), `"Type":"PortalSuspended"`) {
		t.Error("pgJDBC never fetched from a suspended portal")
	}
}
