package duckdb

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
)

var errAborted = &pgconn.PgError{Severity: "ERROR", Code: "25P02",
	Message: "current transaction is aborted, commands ignored until end of transaction block"}

// errMultipleStatements is Postgres's answer to more than one statement
// where one is expected. pgcdc splits a simple query into statements
// itself; text it cannot split (a DuckDB spelling the Postgres scanner
// rejects, such as "SELECT 1a; BEGIN") arrives here whole, and DuckDB's
// driver would otherwise run every statement but the last while preparing.
var errMultipleStatements = &pgconn.PgError{Severity: "ERROR", Code: "42601",
	Message: "cannot insert multiple commands into a prepared statement",
	Hint:    "pgcdc could not split this text into single statements; send them one at a time."}

// translate gives DuckDB errors a SQLSTATE a Postgres client understands.
func translate(err error) error {
	if err == nil {
		return nil
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	if strings.Contains(err.Error(), "missing context for multi-statement query") {
		return errMultipleStatements
	}
	code := "XX000"
	var de *duckdb.Error
	if errors.As(err, &de) {
		if pe := translateLocked(de); pe != nil {
			return pe
		}
		code = sqlstate(de)
		if msg, ok := postgresMessage(code, de.Msg); ok {
			// Postgres's words; DuckDB's message, with its suggestions
			// and LINE pointer, as the detail where it adds any.
			pe := &pgconn.PgError{Severity: "ERROR", Code: code, Message: msg, Detail: de.Msg}
			if code == "22012" {
				pe.Detail = ""
			}
			return pe
		}
	}
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: err.Error()}
}

// sqlstate picks the Postgres SQLSTATE for a DuckDB error: by DuckDB's
// error type, refined by its message where one type covers several of
// Postgres's conditions (a missing table and a missing column are both
// binder or catalog errors in DuckDB).
func sqlstate(de *duckdb.Error) string {
	msg := de.Msg
	has := func(subs ...string) bool {
		for _, s := range subs {
			if strings.Contains(msg, s) {
				return true
			}
		}
		return false
	}
	switch de.Type {
	case duckdb.ErrorTypeParser, duckdb.ErrorTypeSyntax:
		return "42601"
	case duckdb.ErrorTypeCatalog, duckdb.ErrorTypeBinder:
		switch {
		case has("already exists"):
			switch {
			case has("Schema with name", "schema"):
				return "42P06"
			case has("Table with name", "View with name", "Index with name", "Sequence with name"):
				return "42P07"
			}
			return "42710"
		case has("Ambiguous reference"):
			return "42702"
		case has("Scalar Function with name", "Table Function with name", "Aggregate Function with name",
			"Macro Function with name", "Function with name", "No function matches",
			"Could not choose a best candidate function", "No matching function"):
			return "42883"
		case has("Type with name"):
			return "42704"
		case has("No catalog + schema named", "Schema with name"):
			return "3F000"
		case has("Table with name", "View with name", "Table \"", "table \""):
			return "42P01"
		case has("Referenced column", "Column with name", "column", "Column", "Referenced table"):
			if has("Referenced table") {
				return "42P01"
			}
			return "42703"
		case has("Cannot mix values of type", "Cannot compare values of type", "Cannot implicitly cast"):
			return "42804"
		case has("must appear in the GROUP BY clause"):
			return "42803"
		}
		if de.Type == duckdb.ErrorTypeCatalog {
			return "42P01"
		}
		return "42703"
	case duckdb.ErrorTypeConversion:
		if has("out of range", "Out of Range") {
			return "22003"
		}
		return "22P02"
	case duckdb.ErrorTypeInvalidInput:
		switch {
		case has("division by zero"):
			return "22012"
		case has("read-only", "read only"):
			return "25006"
		}
		return "22P02"
	case duckdb.ErrorTypeDivideByZero:
		return "22012"
	case duckdb.ErrorTypeOutOfRange:
		return "22003"
	case duckdb.ErrorTypeConstraint:
		switch {
		case has("Duplicate key", "duplicate key", "unique constraint", "primary key constraint"):
			return "23505"
		case has("NOT NULL constraint"):
			return "23502"
		case has("foreign key"):
			return "23503"
		case has("CHECK constraint"):
			return "23514"
		}
		return "23000"
	case duckdb.ErrorTypeTransaction:
		if has("read-only mode", "read-only transaction") {
			return "25006"
		}
		return "40001"
	case duckdb.ErrorTypeInterrupt:
		return "57014"
	case duckdb.ErrorTypeNotImplemented:
		return "0A000"
	case duckdb.ErrorTypeOutOfMemory:
		return "53200"
	case duckdb.ErrorTypeDependency:
		return "2BP01"
	}
	return "XX000"
}

// duckdbNames are the quoted or bare names in DuckDB's messages:
// Table with name nosuch does not exist!, Referenced column "x" not found.
var (
	reTableMissing  = regexp.MustCompile(`^Catalog Error: Table with name "?([^"!\s]+)"? does not exist!`)
	reColumnMissing = regexp.MustCompile(`^Binder Error: Referenced column "([^"]+)" not found`)
	reFuncMissing   = regexp.MustCompile(`^Catalog Error: Scalar Function with name "?([^"!\s]+)"? does not exist!`)
	reTableExists   = regexp.MustCompile(`^Catalog Error: Table with name "?([^"!\s]+)"? already exists!`)
	reSchemaMissing = regexp.MustCompile(`^Catalog Error: Schema with name "?([^"!\s]+)"? does not exist!`)
	reTypeMissing   = regexp.MustCompile(`^Catalog Error: Type with name "?([^"!\s]+)"? does not exist!`)
)

// postgresMessage words the commonest errors as Postgres does, from
// DuckDB's message (never from the client's SQL).
func postgresMessage(code, msg string) (string, bool) {
	match := func(re *regexp.Regexp) (string, bool) {
		m := re.FindStringSubmatch(msg)
		if m == nil {
			return "", false
		}
		return m[1], true
	}
	switch code {
	case "42P01":
		if name, ok := match(reTableMissing); ok {
			return fmt.Sprintf("relation \"%s\" does not exist", name), true
		}
	case "42703":
		if name, ok := match(reColumnMissing); ok {
			return fmt.Sprintf("column \"%s\" does not exist", name), true
		}
	case "42883":
		if name, ok := match(reFuncMissing); ok {
			return fmt.Sprintf("function %s does not exist", name), true
		}
	case "42P07":
		if name, ok := match(reTableExists); ok {
			return fmt.Sprintf("relation \"%s\" already exists", name), true
		}
	case "3F000":
		if name, ok := match(reSchemaMissing); ok {
			return fmt.Sprintf("schema \"%s\" does not exist", name), true
		}
	case "42704":
		if name, ok := match(reTypeMissing); ok {
			return fmt.Sprintf("type \"%s\" does not exist", name), true
		}
	case "22012":
		return "division by zero", true
	}
	return "", false
}
