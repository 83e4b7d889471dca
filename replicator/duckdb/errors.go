package duckdb

import (
	"context"
	"errors"
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
		switch de.Type {
		case duckdb.ErrorTypeParser:
			code = "42601"
		case duckdb.ErrorTypeCatalog:
			code = "42P01"
			if strings.Contains(de.Msg, "Column") || strings.Contains(de.Msg, "column") {
				code = "42703"
			}
		case duckdb.ErrorTypeBinder:
			code = "42703"
			if strings.Contains(de.Msg, "Table") || strings.Contains(de.Msg, "table") {
				code = "42P01"
			}
		case duckdb.ErrorTypeConversion, duckdb.ErrorTypeInvalidInput:
			code = "22P02"
		case duckdb.ErrorTypeDivideByZero:
			code = "22012"
		case duckdb.ErrorTypeOutOfRange:
			code = "22003"
		case duckdb.ErrorTypeConstraint:
			code = "23000"
		case duckdb.ErrorTypeTransaction:
			code = "40001"
		case duckdb.ErrorTypeInterrupt:
			code = "57014"
		case duckdb.ErrorTypeNotImplemented:
			code = "0A000"
		}
	}
	return &pgconn.PgError{Severity: "ERROR", Code: code, Message: err.Error()}
}
