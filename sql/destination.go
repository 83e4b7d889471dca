package sql

import (
	"fmt"
	"strings"
)

// A Postgres destination lists pgcdc's functions the way a database lists
// an extension's: a pgcdc schema declares each catalog function with its
// signature, RETURNS TABLE columns and documentation, so \df pgcdc.*, \df+
// and database browsers show them. pgcdc answers the calls itself; the
// declared functions only raise an error that says so, for a client that
// calls one on the destination directly.

// DirectCallCode is the SQLSTATE of the error a declared function raises
// when it is called on the destination instead of through pgcdc:
// feature_not_supported.
const DirectCallCode = "0A000"

// schemaMarker starts the comment of the schema pgcdc created; a schema
// named pgcdc without it belongs to someone else and is left alone.
const schemaMarker = "pgcdc:"

// directCallHelper raises the error of a direct call. It lives in pgcdc's
// own schema, _pgcdc, so that \df pgcdc.* lists only the catalog.
const directCallHelper = "_pgcdc.call_through_pgcdc"

// DestinationSQL is a script that declares the catalog in a Postgres
// destination: one DO block, so it applies whole or not at all, and
// idempotent, so it runs at every start-up. It creates schema pgcdc (and
// refuses, with 42P06, a pgcdc schema it did not create), then CREATE OR
// REPLACE FUNCTION for each catalog function, dropping and recreating one
// whose parameter names, defaults or result columns changed (which CREATE
// OR REPLACE cannot do), and drops functions in the schema the catalog no
// longer declares. Each function gets its COMMENT. An advisory lock keeps
// two pgcdc processes sharing a destination from racing.
func (c *Catalog) DestinationSQL() string {
	var b strings.Builder
	b.WriteString("DO $pgcdc_install$\nDECLARE\n\tstale record;\nBEGIN\n")
	b.WriteString("\tPERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pgcdc function declarations'));\n")
	fmt.Fprintf(&b, "\tIF EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = %s) THEN\n", quoteLiteral(Schema))
	fmt.Fprintf(&b, "\t\tIF coalesce(pg_catalog.obj_description(%s::regnamespace, 'pg_namespace'), '') NOT LIKE %s THEN\n",
		quoteLiteral(Schema), quoteLiteral(schemaMarker+"%"))
	fmt.Fprintf(&b, "\t\t\tRAISE EXCEPTION 'schema \"%s\" exists and was not created by pgcdc' USING ERRCODE = '42P06',\n", Schema)
	b.WriteString("\t\t\t\tHINT = 'pgcdc declares its functions in that schema; rename the schema to let it.';\n")
	b.WriteString("\t\tEND IF;\n\tELSE\n")
	fmt.Fprintf(&b, "\t\tCREATE SCHEMA %s;\n\tEND IF;\n", Schema)
	fmt.Fprintf(&b, "\tCOMMENT ON SCHEMA %s IS %s;\n", Schema, dollarQuote(schemaMarker+
		" the SQL functions pgcdc serves. Call them through pgcdc: declared here so that clients can list them, they only raise an error when called on this database directly."))
	b.WriteString("\tIF NOT EXISTS (SELECT FROM pg_catalog.pg_namespace WHERE nspname = '_pgcdc') THEN\n\t\tCREATE SCHEMA _pgcdc;\n\tEND IF;\n")
	fmt.Fprintf(&b, "\tCREATE OR REPLACE FUNCTION %s(function_name text) RETURNS boolean LANGUAGE plpgsql AS $pgcdc$\n", directCallHelper)
	b.WriteString("\tBEGIN\n")
	fmt.Fprintf(&b, "\t\tRAISE EXCEPTION '%s.%%() must be called through pgcdc, not on the destination database directly', function_name\n", Schema)
	fmt.Fprintf(&b, "\t\t\tUSING ERRCODE = '%s', HINT = 'Connect to pgcdc, which serves this database: it answers calls of its own functions and passes every other statement here.';\n", DirectCallCode)
	b.WriteString("\tEND\n\t$pgcdc$;\n")
	for _, fn := range c.Functions {
		create := fn.createSQL()
		fmt.Fprintf(&b, "\tBEGIN\n\t\tCREATE OR REPLACE %s;\n", create)
		b.WriteString("\tEXCEPTION WHEN invalid_function_definition THEN\n")
		fmt.Fprintf(&b, "\t\tDROP FUNCTION %s;\n\t\tCREATE %s;\n\tEND;\n", fn.identity(), create)
		fmt.Fprintf(&b, "\tCOMMENT ON FUNCTION %s IS %s;\n", fn.identity(), dollarQuote(strings.TrimSpace(fn.Comment)))
	}
	b.WriteString("\tFOR stale IN SELECT p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args FROM pg_catalog.pg_proc p\n")
	fmt.Fprintf(&b, "\t\tWHERE p.pronamespace = %s::regnamespace AND p.oid <> ALL (ARRAY[", quoteLiteral(Schema))
	for i, fn := range c.Functions {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(quoteLiteral(fn.identity()) + "::regprocedure")
	}
	fmt.Fprintf(&b, "]::oid[])\n\tLOOP\n\t\tEXECUTE pg_catalog.format('DROP FUNCTION %s.%%I(%%s)', stale.proname, stale.args);\n\tEND LOOP;\n", Schema)
	b.WriteString("END\n$pgcdc_install$")
	return b.String()
}

// createSQL is the FUNCTION ... part of the declaration: the catalog's
// signature and result, and a body that raises the direct-call error. The
// body is SQL, not PL/pgSQL, because PL/pgSQL refuses a result column
// named like a parameter, which the catalog has (slot_name).
func (f *Function) createSQL() string {
	var b strings.Builder
	fmt.Fprintf(&b, "FUNCTION %s.%s(", Schema, QuoteIdentIfNeeded(f.Name))
	for i, p := range f.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(QuoteIdentIfNeeded(p.Name) + " " + p.Type.Name)
		if p.HasDefault {
			b.WriteString(" DEFAULT " + sqlLiteral(p.Default))
		}
	}
	b.WriteString(") RETURNS TABLE (")
	nulls := make([]string, len(f.Result))
	for i, rc := range f.Result {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(QuoteIdentIfNeeded(rc.Name) + " " + rc.Type.Name)
		nulls[i] = "NULL::" + rc.Type.Name
	}
	fmt.Fprintf(&b, ") LANGUAGE sql VOLATILE AS $pgcdc$ SELECT %s WHERE %s(%s) $pgcdc$",
		strings.Join(nulls, ", "), directCallHelper, quoteLiteral(f.Name))
	return b.String()
}

// identity is the function's name and argument types, which is how
// Postgres identifies it: pgcdc.replicate(text, text, jsonb, ...).
func (f *Function) identity() string {
	types := make([]string, len(f.Params))
	for i, p := range f.Params {
		types[i] = p.Type.Name
	}
	return fmt.Sprintf("%s.%s(%s)", Schema, QuoteIdentIfNeeded(f.Name), strings.Join(types, ", "))
}

// dollarQuote quotes s as a dollar-quoted string literal, which takes
// backslashes and quotes as they are whatever standard_conforming_strings
// says.
func dollarQuote(s string) string {
	tag := "$pgcdc_doc$"
	for strings.Contains(s, tag) {
		tag = tag[:len(tag)-1] + "x$"
	}
	return tag + s + tag
}
