package sql

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
)

// SQLSTATE codes this package reports. They follow what Postgres itself
// reports for the same mistake, so clients and drivers that branch on the
// code behave as they would against a real server.
const (
	codeProtocolViolation       = "08P01"
	codeFeatureNotSupported     = "0A000"
	codeNumericValueOutOfRange  = "22003"
	codeNullValueNotAllowed     = "22004"
	codeCharacterNotInRepertory = "22021"
	codeInvalidParameterValue   = "22023"
	codeInvalidTextRepr         = "22P02"
	codeSyntaxError             = "42601"
	codeUndefinedColumn         = "42703"
	codeUndefinedTable          = "42P01"
	codeUndefinedParameter      = "42P02"
	codeAmbiguousParameter      = "42P08"
	codeInvalidColumnReference  = "42P10"
	codeDatatypeMismatch        = "42804"
	codeCannotCoerce            = "42846"
	codeUndefinedFunction       = "42883"
)

func newError(code, format string, args ...any) *pgconn.PgError {
	return &pgconn.PgError{
		Severity:            "ERROR",
		SeverityUnlocalized: "ERROR",
		Code:                code,
		Message:             fmt.Sprintf(format, args...),
	}
}

// argError puts the function and argument in front of a conversion error:
// the evaluator reports what is wrong with a value, and only the caller
// knows which argument the value was for.
func argError(fn *Function, param string, err *pgconn.PgError) *pgconn.PgError {
	e := *err
	e.Message = fmt.Sprintf("%s(): argument %s: %s", fn.Name, param, err.Message)
	return &e
}

func shapeError(fn *Function) *pgconn.PgError {
	return newError(codeFeatureNotSupported,
		"pgcdc: %[1]s() must be called as SELECT %[1]s(...) or SELECT * FROM %[1]s(...)", fn.Name)
}

func notConstantError(fn *Function) *pgconn.PgError {
	return newError(codeFeatureNotSupported,
		"pgcdc: arguments to %s() must be constants or parameters", fn.Name)
}

func nulError() *pgconn.PgError {
	return newError(codeCharacterNotInRepertory, `invalid byte sequence for encoding "UTF8": 0x00`)
}
