package functions

import (
	"maps"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/wire"
)

func TestStartupOptions(t *testing.T) {
	got := startupOptions(`-c statement_timeout=5s --DateStyle=ISO -c search_path=a\ b -cextra_float_digits=3 junk`)
	want := map[string]string{"statement_timeout": "5s", "DateStyle": "ISO", "search_path": "a b", "extra_float_digits": "3"}
	if !maps.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestAcceptISODates(t *testing.T) {
	for in, want := range map[string]string{"ISO": "ISO, MDY", "iso, dmy": "ISO, DMY", "ISO, US": "ISO, MDY", "YMD, ISO": "ISO, YMD"} {
		if got, err := acceptISODates(in); err != nil || got != want {
			t.Errorf("%q: %q %v, want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"German", "SQL, DMY", "DMY", "Postgres"} {
		if _, err := acceptISODates(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func TestCompatStatementRecognises(t *testing.T) {
	s := &session{settings: newSessionSettings(wire.SessionInfo{User: "u", ServerVersion: "16.4",
		Parameters: map[string]string{"extra_float_digits": "2", "options": "-c DateStyle=ISO,DMY"}})}
	for q, ours := range map[string]bool{
		"SET extra_float_digits = 3":                      true,
		"/* dbt */ set application_name to 'x'":           true,
		"SHOW server_version_num":                         true,
		"RESET ALL":                                       true,
		"SET TRANSACTION ISOLATION LEVEL REPEATABLE READ": true,
		"SET search_path TO a, \"B c\"":                   true,
		"select version()":                                true,
		"SELECT pg_catalog.version ( ) ;":                 true,
		"SET threads = 2":                                 false, // DuckDB's
		"SHOW TABLES":                                     false,
		"SELECT version() AS v":                           false,
		"SELECT 1":                                        false,
		"settle":                                          false,
	} {
		st, err := s.compatStatement(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		if (st != nil) != ours {
			t.Errorf("%s: answered by the session = %v, want %v", q, st != nil, ours)
		}
	}
	for _, q := range []string{"SET TRANSACTION ISOLATION LEVEL SERIALIZABLE", "SET default_transaction_isolation = serializable",
		"BEGIN ISOLATION LEVEL SERIALIZABLE"} {
		st, err := s.compatStatement(q)
		if q[0] == 'B' {
			// BEGIN is the destination's to refuse.
			if st != nil || err != nil {
				t.Errorf("%s: answered by the session (%v)", q, err)
			}
			continue
		}
		if pe, ok := err.(*pgconn.PgError); !ok || pe.Code != "0A000" {
			t.Errorf("%s: %v, want SQLSTATE 0A000", q, err)
		}
	}
	for q, code := range map[string]string{"SET TimeZone = 'Mars/Olympus'": "22023", "SET statement_timeout = '5 parsecs'": "22023"} {
		if _, err := s.compatStatement(q); err == nil || err.(*pgconn.PgError).Code != code {
			t.Errorf("%s: %v, want SQLSTATE %s", q, err, code)
		}
	}
	if _, err := s.compatStatement("SET server_version = '1'"); err == nil {
		t.Error("SET of a read-only setting accepted")
	}
	for key, want := range map[string]string{"server_version_num": "160004", "extra_float_digits": "2", "datestyle": "ISO, DMY", "session_authorization": "u"} {
		if got := s.settings.get(key); got != want {
			t.Errorf("%s = %q, want %q", key, got, want)
		}
	}
}
