package duckdb

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"

	pgsql "github.com/pgcdc/pgcdc/sql"
)

// policy decides which statements client sessions may run. DuckDB has no
// users or grants: whatever a connection can do, a client could. The
// database-wide part of the protection is DuckDB's own (external access off,
// configuration locked, set in Open); policy adds what DuckDB cannot say,
// from the statement's text and the type DuckDB gives it. Doc.go lists the
// rules and why each exists.
type policy struct {
	// unsafeFileAccess is the operator's opt-in (UnsafeClientFileAccess):
	// file access, ATTACH, extensions and global settings become the
	// clients'.
	unsafeFileAccess bool
	// builtins holds the lower-case names of DuckDB's built-in functions and
	// types, and the engine's stage function. A macro or type of the same
	// name, in any schema a connection searches, would replace the built-in
	// for that connection.
	builtins map[string]bool
}

func newPolicy(ctx context.Context, db *sql.DB, unsafeFileAccess bool) (*policy, error) {
	p := &policy{unsafeFileAccess: unsafeFileAccess, builtins: map[string]bool{stageFunction: true, loadFunction: true}}
	rows, err := db.QueryContext(ctx, `SELECT lower(function_name) FROM duckdb_functions() WHERE database_name = 'system'
		UNION SELECT lower(type_name) FROM duckdb_types() WHERE database_name = 'system'`)
	if err != nil {
		return nil, fmt.Errorf("read built-in names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		p.builtins[name] = true
	}
	return p, rows.Err()
}

// Statement types duckdb-go does not name, numbered as in duckdb.h.
const (
	stmtCopyDatabase     duckdb.StmtType = 28
	stmtUpdateExtensions duckdb.StmtType = 29
	stmtMergeInto        duckdb.StmtType = 30
)

// unsafeFlag is how an operator lifts the refusals marked as such.
const unsafeFlag = "--unsafe-allow-client-file-access"

// deniedFunctions are table functions a SELECT or CALL can reach that act
// on more than the client's own query, with why. They are refused even when
// the operator opted in, because the opt-in is about files, attachments,
// extensions and settings, and none of these is needed for those.
var deniedFunctions = map[string]string{
	"force_checkpoint":            "it aborts every other transaction, replicate()'s included",
	"enable_profiling":            "DuckDB prints profiles on pgcdc's standard output",
	"disable_profiling":           "profiling is pgcdc's, not a client's, to switch",
	"enable_logging":              "it changes DuckDB's logging for the whole server",
	"disable_logging":             "it changes DuckDB's logging for the whole server",
	"truncate_duckdb_logs":        "it changes DuckDB's logging for the whole server",
	"enable_peg_parser":           "it changes DuckDB's parser for the whole server",
	"disable_peg_parser":          "it changes DuckDB's parser for the whole server",
	"query":                       "it runs SQL built at run time, which pgcdc cannot check",
	"json_execute_serialized_sql": "it runs SQL built at run time, which pgcdc cannot check",
	"arrow_scan":                  "it reads raw memory addresses",
	"arrow_scan_dumb":             "it reads raw memory addresses",
}

// checkText runs before DuckDB sees the statement, because preparing it is
// already too late for some: binding reads files (read_csv samples them,
// COPY FROM would sample pgcdc's standard input) and sets up table
// functions. The function names are looked for in the raw text, strings
// and comments included, so that no disagreement with DuckDB's scanner can
// hide a call; the price is a rare false refusal of a statement that only
// mentions such a call in a string or comment.
func (p *policy) checkText(query, lower string) error {
	for name, why := range deniedFunctions {
		if callsFunction(lower, name) {
			return permissionDenied(fmt.Sprintf("function %s() is not available to clients", name), why, "")
		}
	}
	copying, stdio := false, false
	for t := range pgsql.Tokens(query) {
		switch {
		case t.Is("copy"):
			copying = true
		case t.Is("stdin") || t.Is("stdout"):
			stdio = true
		case t.Kind == pgsql.TokenString && p.unsafeFileAccess && mayBeDevice(t.Text) && isStdio(t.StringValue()):
			// Without the opt-in DuckDB refuses every path; with it,
			// pgcdc's own standard streams still belong to pgcdc.
			return permissionDenied(fmt.Sprintf("permission denied for file %q", t.StringValue()),
				"pgcdc's standard input, output and error are its own, and so are its terminal and devices.", "")
		}
	}
	if copying && stdio {
		// DuckDB would take STDOUT for /dev/stdout, pgcdc's own. A COPY
		// the session recognised never gets here (copy.go); this is
		// EXPLAIN COPY, or text the Postgres parser rejects.
		return featureNotSupported("COPY FROM STDIN and COPY TO STDOUT must be statements of their own, in Postgres syntax",
			"pgcdc runs them in the COPY protocol; EXPLAIN of them is not supported.")
	}
	if !p.unsafeFileAccess {
		// Binding COPY FROM samples the file, so the type check after
		// preparing (checkType) would come too late for it.
		stmt := query
		if inner, ok := explained(query); ok {
			stmt = inner
		}
		if words := leadingWords(stmt, 1); len(words) == 1 && (words[0] == "COPY" || words[0] == "EXPORT") {
			return fileStatementDenied(words[0])
		}
	}
	return nil
}

// checkStatement runs after DuckDB prepared query as one statement of type
// typ, and before it runs. inner prepares another statement (the one an
// EXPLAIN wraps) and says its type.
func (p *policy) checkStatement(query, lower string, typ duckdb.StmtType, inner func(string) (duckdb.StmtType, error)) error {
	stmt, effective := query, typ
	if typ == duckdb.STATEMENT_TYPE_EXPLAIN {
		// EXPLAIN ANALYZE runs what it explains, and DuckDB explains
		// anything: SET, BEGIN, LOAD, CREATE. Judge the statement inside.
		text, ok := explained(query)
		if !ok {
			return featureNotSupported("pgcdc cannot tell which statement this EXPLAIN explains", "Write EXPLAIN [ANALYZE] followed by the statement.")
		}
		it, err := inner(text)
		if err != nil {
			return err
		}
		switch it {
		case duckdb.STATEMENT_TYPE_TRANSACTION, duckdb.STATEMENT_TYPE_SET, duckdb.STATEMENT_TYPE_VARIABLE_SET,
			duckdb.STATEMENT_TYPE_EXPLAIN, duckdb.STATEMENT_TYPE_PREPARE, duckdb.STATEMENT_TYPE_EXECUTE:
			return featureNotSupported("EXPLAIN of transaction control, SET, PREPARE or EXECUTE is not supported", "")
		}
		stmt, effective = text, it
	}
	if err := p.checkType(effective, stmt); err != nil {
		return err
	}
	if strings.Contains(lower, stateSchema) && effective != duckdb.STATEMENT_TYPE_SELECT {
		return permissionDenied("permission denied for schema "+stateSchema,
			"Schema "+stateSchema+" holds pgcdc's replication state; clients may read it with SELECT and nothing else.", "")
	}
	return nil
}

// checkType applies the rules that depend on what kind of statement stmt
// is.
func (p *policy) checkType(typ duckdb.StmtType, stmt string) error {
	words := leadingWords(stmt, 3)
	switch typ {
	case duckdb.STATEMENT_TYPE_ATTACH, duckdb.STATEMENT_TYPE_DETACH, duckdb.STATEMENT_TYPE_LOAD,
		duckdb.STATEMENT_TYPE_EXTENSION, stmtUpdateExtensions, stmtCopyDatabase:
		if !p.unsafeFileAccess {
			return permissionDenied(fmt.Sprintf("permission denied for %s", globalVerb(typ, words)),
				"It changes the DuckDB database that every session and replicate() share.", operatorHint)
		}
	case duckdb.STATEMENT_TYPE_COPY, duckdb.STATEMENT_TYPE_EXPORT:
		// With external access off DuckDB still lets every connection reach
		// the database's own files (the file, its WAL, its temporary
		// directory), so these could only read or overwrite the replica's
		// storage: COPY ... TO 'replica.duckdb' (USE_TMP_FILE false)
		// destroys it.
		if !p.unsafeFileAccess {
			return fileStatementDenied(globalVerb(typ, words))
		}
	case duckdb.STATEMENT_TYPE_SET:
		if len(words) > 0 && words[0] == "USE" && !p.unsafeFileAccess {
			return permissionDenied("permission denied for USE",
				"USE switches to attached databases, which clients cannot have.", operatorHint+" Use SET search_path to choose schemas.")
		}
	case duckdb.STATEMENT_TYPE_PRAGMA:
		// Informational pragmas (table_info, show_tables, database_size,
		// version) become SELECTs in DuckDB and never get here; the ones
		// that do act on DuckDB itself, past its configuration lock.
		return permissionDenied("PRAGMA statements that change DuckDB's behaviour are not available to clients",
			"They act on the server outside DuckDB's configuration lock; some print on pgcdc's standard output.",
			"Informational pragmas such as PRAGMA table_info('t') work; settings can be read from duckdb_settings().")
	case duckdb.STATEMENT_TYPE_CALL:
		if len(words) > 0 && words[0] == "FORCE" {
			return permissionDenied("FORCE CHECKPOINT is not available to clients", deniedFunctions["force_checkpoint"], "")
		}
	case duckdb.STATEMENT_TYPE_CREATE:
		if kind, name, ok := createsFunctionOrType(stmt); ok && p.builtins[name] {
			return permissionDenied(fmt.Sprintf("cannot create %s %q: DuckDB has a built-in of that name", kind, name),
				"It would replace the built-in for every session whose search path reaches it, pgcdc's own included.", "")
		}
	}
	return nil
}

const operatorHint = "An operator can allow it by starting pgcdc with " + unsafeFlag + ", which lets every client read and write the server's files."

// translateLocked turns DuckDB's errors about its configuration lock and
// disabled external access into Postgres's insufficient_privilege, with
// what the client may do about it. Other errors pass.
func translateLocked(de *duckdb.Error) *pgconn.PgError {
	switch {
	case de.Type == duckdb.ErrorTypePermission:
		return permissionDenied(de.Msg, "pgcdc does not let clients reach the server's files, network or extensions.", operatorHint)
	case strings.Contains(de.Msg, "the configuration has been locked"):
		return permissionDenied(de.Msg, "DuckDB's settings are shared by every session and by replicate().",
			operatorHint+" Session settings such as search_path work.")
	}
	return nil
}

func fileStatementDenied(verb string) *pgconn.PgError {
	return permissionDenied(fmt.Sprintf("permission denied for %s to or from a file", verb),
		"pgcdc does not let clients reach the server's files.", operatorHint)
}

func permissionDenied(msg, detail, hint string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: "42501", Message: msg, Detail: detail, Hint: hint}
}

func featureNotSupported(msg, hint string) *pgconn.PgError {
	return &pgconn.PgError{Severity: "ERROR", Code: "0A000", Message: msg, Hint: hint}
}

// leadingWords returns the first n tokens of a statement that are words, in
// upper case, stopping at the first token that is not one.
func leadingWords(query string, n int) []string {
	var words []string
	for t := range pgsql.Tokens(query) {
		if t.Kind != pgsql.TokenWord || len(words) == n {
			break
		}
		words = append(words, strings.ToUpper(t.Text))
	}
	return words
}

// createsFunctionOrType recognises CREATE [OR REPLACE] [TEMP] MACRO |
// FUNCTION | TYPE [IF NOT EXISTS] name and returns the kind and the
// lower-case last part of the name.
func createsFunctionOrType(stmt string) (kind, name string, ok bool) {
	state := 0
	for t := range pgsql.Tokens(stmt) {
		switch state {
		case 0: // CREATE
			if !t.Is("create") {
				return "", "", false
			}
			state = 1
		case 1: // modifiers, then the kind
			switch {
			case t.Is("or"), t.Is("replace"), t.Is("temp"), t.Is("temporary"):
			case t.Is("macro"), t.Is("function"), t.Is("type"):
				kind, state = t.Name(), 2
			default:
				return "", "", false
			}
		case 2: // IF NOT EXISTS, then a name part
			if t.Is("if") || t.Is("not") || t.Is("exists") {
				continue
			}
			fallthrough
		case 4: // a name part after a dot
			if t.Kind != pgsql.TokenWord && t.Kind != pgsql.TokenQuoted {
				return "", "", false
			}
			name, state = t.Name(), 3
		case 3: // a dot, or the end of the name
			if t.Text != "." {
				return kind, name, true
			}
			state = 4
		}
	}
	return kind, name, state == 3
}

// globalVerb names a statement that changes the database for everyone.
func globalVerb(typ duckdb.StmtType, words []string) string {
	switch typ {
	case stmtUpdateExtensions:
		return "UPDATE EXTENSIONS"
	case stmtCopyDatabase:
		return "COPY FROM DATABASE"
	case duckdb.STATEMENT_TYPE_LOAD:
		if len(words) > 1 && words[0] == "FORCE" {
			return "FORCE INSTALL"
		}
	}
	if len(words) == 0 {
		return "this statement"
	}
	return words[0]
}

// explained returns the statement an EXPLAIN wraps: what follows EXPLAIN,
// an optional ANALYZE (or ANALYSE) and an optional parenthesised option
// list.
func explained(query string) (string, bool) {
	state, depth := 0, 0
	for t := range pgsql.Tokens(query) {
		switch {
		case state == 0 && t.Is("explain"):
			state = 1
		case state == 1 && (t.Is("analyze") || t.Is("analyse")):
			state = 2
		case state == 1 && t.Kind == pgsql.TokenPunct && t.Text == "(":
			state, depth = 3, 1
		case state == 3:
			switch t.Text {
			case "(":
				depth++
			case ")":
				if depth--; depth == 0 {
					state = 2
				}
			}
		case state == 1 || state == 2:
			return query[t.Pos:], true
		default:
			return "", false
		}
	}
	return "", false
}

// callsFunction reports whether lower (lower-case text) calls the function
// name: the name as a whole word (quoted or not, qualified or not) followed
// by an opening parenthesis, with only white space and comments between.
func callsFunction(lower, name string) bool {
	for off := 0; ; {
		i := strings.Index(lower[off:], name)
		if i < 0 {
			return false
		}
		start, end := off+i, off+i+len(name)
		off = start + 1
		if start > 0 && isIdentByte(lower[start-1]) {
			continue
		}
		if end < len(lower) && lower[end] == '"' {
			end++
		}
		if j := skipSpaceAndComments(lower, end); j < len(lower) && lower[j] == '(' {
			return true
		}
	}
}

func skipSpaceAndComments(s string, i int) int {
	for i < len(s) {
		switch {
		case s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r' || s[i] == '\f' || s[i] == '\v':
			i++
		case strings.HasPrefix(s[i:], "--"):
			nl := strings.IndexAny(s[i:], "\r\n")
			if nl < 0 {
				return len(s)
			}
			i += nl
		case strings.HasPrefix(s[i:], "/*"):
			depth := 0
			for ; i+1 < len(s); i++ {
				if s[i] == '/' && s[i+1] == '*' {
					depth++
					i++
				} else if s[i] == '*' && s[i+1] == '/' {
					depth--
					i++
					if depth == 0 {
						i++
						break
					}
				}
			}
			if depth > 0 {
				return len(s)
			}
		default:
			return i
		}
	}
	return i
}

func isIdentByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '$' || c >= 0x80
}

// mayBeDevice is a cheap test that keeps isStdio's file system look-ups
// off ordinary string literals.
func mayBeDevice(s string) bool {
	for _, w := range []string{"dev", "proc", "std", "tty", "fd"} {
		if strings.Contains(s, w) {
			return true
		}
	}
	return false
}

// isStdio reports whether path names one of this process's standard
// streams or its terminal, however it is spelled (/dev/stdout,
// /dev/fd/1, /proc/self/fd/1, /proc/<pid>/fd/1, a relative path, a
// symbolic link).
func isStdio(path string) bool {
	if path == "" || strings.Contains(path, "://") {
		return false
	}
	p := filepath.Clean(path)
	if !filepath.IsAbs(p) {
		if abs, err := filepath.Abs(p); err == nil {
			p = abs
		}
	}
	if isStdioName(p) {
		return true
	}
	// A link to one (a directory's or the file's own) counts too; the link
	// to a stream itself (/dev/stdout, /proc/self/fd/1) resolves to
	// whatever the stream is, which is why the name was checked first.
	if r, err := filepath.EvalSymlinks(filepath.Dir(p)); err == nil && isStdioName(filepath.Join(r, filepath.Base(p))) {
		return true
	}
	r, err := filepath.EvalSymlinks(p)
	return err == nil && isStdioName(r)
}

func isStdioName(p string) bool {
	switch p {
	case "/dev/stdin", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/console":
		return true
	}
	pid := strconv.Itoa(os.Getpid())
	for _, dir := range []string{"/dev/fd/", "/proc/self/fd/", "/proc/thread-self/fd/", "/proc/" + pid + "/fd/", "/proc/self/task/", "/proc/" + pid + "/task/", "/dev/pts/"} {
		if strings.HasPrefix(p, dir) {
			return true
		}
	}
	return false
}

// lowerASCII folds ASCII letters only, as DuckDB does for identifiers.
func lowerASCII(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
