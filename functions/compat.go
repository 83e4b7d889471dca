package functions

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgcdc/pgcdc/wire"
)

// Postgres session settings. Client libraries set and read Postgres
// settings that DuckDB does not have: pgJDBC runs SET extra_float_digits = 3
// on connect, psycopg2 may SET DATESTYLE, pools SET application_name, and
// tools SHOW server_version_num or SELECT version(). The session answers
// these itself, keeping the values per session, and passes every setting
// it does not know on to the destination (which has its own, such as
// threads or search_path).

// pgSetting is one Postgres setting a session answers itself.
type pgSetting struct {
	name     string // canonical spelling, as SHOW names its column
	def      string // value when never set
	report   bool   // sent as ParameterStatus when it changes (GUC_REPORT)
	readOnly bool
	// accept normalises a new value, or refuses it: for settings whose
	// value shapes what pgcdc sends, only the values it really follows.
	accept func(v string) (string, error)
}

// pgSettings is keyed by the lower-case name, as the parser gives it.
var pgSettings = map[string]*pgSetting{}

func init() {
	for _, s := range []*pgSetting{
		{name: "application_name", report: true},
		{name: "client_encoding", def: "UTF8", report: true, accept: acceptUTF8},
		{name: "DateStyle", def: "ISO, MDY", report: true, accept: acceptISODates},
		{name: "IntervalStyle", def: "postgres", report: true, accept: only("postgres")},
		{name: "TimeZone", def: "UTC", report: true},
		{name: "standard_conforming_strings", def: "on", report: true, accept: only("on")},
		{name: "bytea_output", def: "hex", accept: only("hex")},
		{name: "extra_float_digits", def: "1", accept: acceptInt},
		{name: "statement_timeout", def: "0"},
		{name: "lock_timeout", def: "0"},
		{name: "idle_in_transaction_session_timeout", def: "0"},
		{name: "idle_session_timeout", def: "0"},
		{name: "client_min_messages", def: "notice"},
		{name: "default_transaction_isolation", def: "read committed"},
		{name: "transaction_isolation", def: "read committed"},
		{name: "default_transaction_read_only", def: "off"},
		{name: "transaction_read_only", def: "off"},
		{name: "synchronous_commit", def: "on"},
		{name: "jit", def: "off"},
		{name: "row_security", def: "on"},
		{name: "lc_messages", def: "C"},
		{name: "lc_monetary", def: "C"},
		{name: "lc_numeric", def: "C"},
		{name: "lc_time", def: "C"},
		{name: "escape_string_warning", def: "on"},
		{name: "work_mem", def: "4MB"},
		{name: "integer_datetimes", def: "on", report: true, readOnly: true},
		{name: "server_encoding", def: "UTF8", report: true, readOnly: true},
		{name: "server_version", report: true, readOnly: true},
		{name: "server_version_num", readOnly: true},
		{name: "is_superuser", def: "off", report: true, readOnly: true},
		{name: "session_authorization", report: true, readOnly: true},
		{name: "max_identifier_length", def: "63", readOnly: true},
		{name: "lc_collate", def: "C", readOnly: true},
		{name: "lc_ctype", def: "C", readOnly: true},
	} {
		pgSettings[strings.ToLower(s.name)] = s
	}
}

func acceptUTF8(v string) (string, error) {
	switch strings.ToUpper(strings.ReplaceAll(v, "-", "")) {
	case "UTF8", "UNICODE":
		return "UTF8", nil
	}
	return "", featureError("pgcdc speaks UTF8 only; client_encoding %q is not supported", v)
}

// acceptISODates takes what psycopg2 and pgJDBC set ("ISO", "ISO, MDY"):
// pgcdc prints dates in ISO style, so the order part only matters for
// input, which the destination parses.
func acceptISODates(v string) (string, error) {
	var style, order string
	for part := range strings.SplitSeq(strings.ToUpper(v), ",") {
		switch p := strings.TrimSpace(part); p {
		case "ISO":
			style = "ISO"
		case "MDY", "DMY", "YMD", "US", "NONEURO", "NONEUROPEAN":
			order = p
		case "EURO", "EUROPEAN":
			order = "DMY"
		case "DEFAULT", "":
		default:
			return "", featureError("pgcdc prints dates in ISO style only; DateStyle %q is not supported", v)
		}
	}
	if style == "" && order != "" {
		return "", featureError("pgcdc prints dates in ISO style only; DateStyle %q is not supported", v)
	}
	switch order {
	case "DMY", "YMD":
	default:
		order = "MDY"
	}
	return "ISO, " + order, nil
}

func only(want string) func(string) (string, error) {
	return func(v string) (string, error) {
		if strings.EqualFold(v, want) || (want == "on" && strings.EqualFold(v, "true")) {
			return want, nil
		}
		return "", featureError("pgcdc supports only %q here, not %q", want, v)
	}
}

func acceptInt(v string) (string, error) {
	if _, err := strconv.Atoi(v); err != nil {
		return "", &pgconn.PgError{Severity: "ERROR", Code: "22023", Message: fmt.Sprintf("invalid value for an integer setting: %q", v)}
	}
	return v, nil
}

func featureError(format string, args ...any) error {
	return &pgconn.PgError{Severity: "ERROR", Code: "0A000", Message: fmt.Sprintf(format, args...)}
}

// sessionSettings is one session's values of pgSettings.
type sessionSettings struct {
	values map[string]string // by lower-case name; absent means default
	info   wire.SessionInfo
}

func newSessionSettings(info wire.SessionInfo) *sessionSettings {
	s := &sessionSettings{values: map[string]string{}, info: info}
	// Startup parameters are settings too (pgJDBC sends extra_float_digits
	// and DateStyle there, libpq's options carries "-c name=value"); the
	// wire layer already reported the ones that it reports.
	params := map[string]string{}
	for k, v := range startupOptions(info.Parameters["options"]) {
		params[k] = v
	}
	for k, v := range info.Parameters {
		params[k] = v
	}
	for k, v := range params {
		if def := pgSettings[strings.ToLower(k)]; def != nil && !def.readOnly {
			if def.accept != nil {
				if nv, err := def.accept(v); err == nil {
					s.values[strings.ToLower(k)] = nv
				}
				continue
			}
			s.values[strings.ToLower(k)] = v
		}
	}
	return s
}

// startupOptions reads the settings in the startup parameter "options":
// "-c name=value" or "--name=value", separated by white space, with
// backslash escapes, as Postgres reads it.
func startupOptions(options string) map[string]string {
	var words []string
	var cur strings.Builder
	escaped := false
	for _, r := range options {
		switch {
		case escaped:
			cur.WriteRune(r)
			escaped = false
		case r == '\\':
			escaped = true
		case r == ' ' || r == '\t' || r == '\n':
			if cur.Len() > 0 {
				words = append(words, cur.String())
				cur.Reset()
			}
		default:
			cur.WriteRune(r)
		}
	}
	if cur.Len() > 0 {
		words = append(words, cur.String())
	}
	out := map[string]string{}
	for i := 0; i < len(words); i++ {
		w := words[i]
		switch {
		case w == "-c" && i+1 < len(words):
			i++
			w = words[i]
		case strings.HasPrefix(w, "--"):
			w = w[2:]
		case strings.HasPrefix(w, "-c"):
			w = w[2:]
		default:
			continue
		}
		if k, v, ok := strings.Cut(w, "="); ok {
			out[strings.ReplaceAll(k, "-", "_")] = v
		}
	}
	return out
}

func (s *sessionSettings) get(key string) string {
	if v, ok := s.values[key]; ok {
		return v
	}
	switch key {
	case "server_version":
		return s.info.ServerVersion
	case "server_version_num":
		major, minor, _ := strings.Cut(s.info.ServerVersion, ".")
		m, _ := strconv.Atoi(major)
		n, _ := strconv.Atoi(minor)
		return strconv.Itoa(m*10000 + n)
	case "session_authorization":
		return s.info.User
	case "application_name":
		return s.info.Application
	}
	return pgSettings[key].def
}

// compatStatement recognises the session commands the session answers
// itself and returns nil for everything else. It must stay cheap for the
// statements it does not take: only SET, RESET, SHOW and SELECT version()
// get as far as the parser.
func (s *session) compatStatement(query string) (wire.Statement, error) {
	word, rest := firstWord(query)
	switch word {
	case "set", "reset", "show":
	case "select":
		if isVersionCall(rest) {
			v := fmt.Sprintf("PostgreSQL %s (pgcdc) on x86_64-pc-linux-gnu, compiled by Go; the SQL dialect is DuckDB's", s.settings.info.ServerVersion)
			return &constStatement{s: s, cols: []wire.Column{{Name: "version", OID: pgtype.TextOID}}, row: []any{v}, tag: "SELECT 1"}, nil
		}
		return nil, nil
	default:
		return nil, nil
	}
	res, err := pg_query.Parse(query)
	if err != nil || len(res.GetStmts()) != 1 {
		return nil, nil // the destination will say what is wrong
	}
	node := res.GetStmts()[0].GetStmt()
	if show := node.GetVariableShowStmt(); show != nil {
		def := pgSettings[strings.ToLower(show.GetName())]
		if def == nil {
			return nil, nil
		}
		key := strings.ToLower(show.GetName())
		return &constStatement{s: s, cols: []wire.Column{{Name: def.name, OID: pgtype.TextOID}}, tag: "SHOW",
			rowFunc: func() []any { return []any{s.settings.get(key)} }}, nil
	}
	set := node.GetVariableSetStmt()
	if set == nil {
		return nil, nil
	}
	switch set.GetKind() {
	case pg_query.VariableSetKind_VAR_RESET_ALL:
		return &setStatement{s: s, resetAll: true, tag: "RESET"}, nil
	case pg_query.VariableSetKind_VAR_SET_MULTI:
		// SET TRANSACTION ..., SET SESSION CHARACTERISTICS AS TRANSACTION
		// ...: DuckDB has one isolation level, which is at least as strict.
		return &setStatement{s: s, tag: "SET"}, nil
	}
	key := strings.ToLower(set.GetName())
	def := pgSettings[key]
	if def == nil {
		return nil, nil
	}
	st := &setStatement{s: s, key: key, def: def, tag: "SET"}
	switch set.GetKind() {
	case pg_query.VariableSetKind_VAR_SET_VALUE:
		v, ok := settingValue(set.GetArgs())
		if !ok {
			return nil, &pgconn.PgError{Severity: "ERROR", Code: "22023", Message: fmt.Sprintf("invalid value for parameter \"%s\"", def.name)}
		}
		st.value = &v
	case pg_query.VariableSetKind_VAR_RESET:
		st.tag = "RESET"
	case pg_query.VariableSetKind_VAR_SET_DEFAULT:
	default:
		return nil, nil
	}
	if def.readOnly {
		return nil, &pgconn.PgError{Severity: "ERROR", Code: "55P02", Message: fmt.Sprintf("parameter \"%s\" cannot be changed", def.name)}
	}
	if st.value != nil && def.accept != nil {
		v, err := def.accept(*st.value)
		if err != nil {
			return nil, err
		}
		st.value = &v
	}
	return st, nil
}

// settingValue renders SET's arguments the way SHOW prints them.
func settingValue(args []*pg_query.Node) (string, bool) {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		c := a.GetAConst()
		if c == nil {
			return "", false
		}
		switch {
		case c.GetSval() != nil:
			parts = append(parts, c.GetSval().GetSval())
		case c.GetIval() != nil:
			parts = append(parts, strconv.Itoa(int(c.GetIval().GetIval())))
		case c.GetFval() != nil:
			parts = append(parts, c.GetFval().GetFval())
		case c.GetBoolval() != nil:
			parts = append(parts, map[bool]string{true: "on", false: "off"}[c.GetBoolval().GetBoolval()])
		default:
			return "", false
		}
	}
	return strings.Join(parts, ", "), len(parts) > 0
}

// firstWord returns the lower-case first keyword of query after comments,
// and what follows it.
func firstWord(q string) (string, string) {
	for {
		q = strings.TrimLeft(q, " \t\r\n\f")
		switch {
		case strings.HasPrefix(q, "--"):
			i := strings.IndexByte(q, '\n')
			if i < 0 {
				return "", ""
			}
			q = q[i+1:]
			continue
		case strings.HasPrefix(q, "/*"):
			i := strings.Index(q, "*/")
			if i < 0 {
				return "", ""
			}
			q = q[i+2:]
			continue
		}
		break
	}
	end := strings.IndexFunc(q, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == '_')
	})
	if end < 0 {
		end = len(q)
	}
	return strings.ToLower(q[:end]), q[end:]
}

// isVersionCall matches " version()" with any spacing and case, and an
// optional pg_catalog. qualifier.
func isVersionCall(rest string) bool {
	s := strings.ToLower(strings.Join(strings.Fields(rest), ""))
	s = strings.TrimSuffix(s, ";")
	return s == "version()" || s == "pg_catalog.version()"
}

// setStatement is SET, SET ... TO DEFAULT, RESET and RESET ALL for a
// setting the session keeps.
type setStatement struct {
	s        *session
	key      string
	def      *pgSetting
	value    *string // nil: back to the default
	resetAll bool
	tag      string
}

func (st *setStatement) ParamOIDs() []uint32    { return nil }
func (st *setStatement) Columns() []wire.Column { return nil }

func (st *setStatement) Execute(ctx context.Context, params []any, n wire.Notifier) (wire.Result, error) {
	if st.s.dest.TxStatus() == 'E' {
		return nil, errAborted
	}
	set := st.s.settings
	change := func(key string, value *string) {
		before := set.get(key)
		if value == nil {
			delete(set.values, key)
		} else {
			set.values[key] = *value
		}
		if def := pgSettings[key]; def.report && set.get(key) != before {
			n.ParameterStatus(def.name, set.get(key))
		}
	}
	switch {
	case st.resetAll:
		for key := range set.values {
			change(key, nil)
		}
	case st.def != nil:
		change(st.key, st.value)
	}
	return &sliceResult{tag: st.tag}, nil
}

// constStatement answers with one row computed in the session.
type constStatement struct {
	s       *session
	cols    []wire.Column
	row     []any
	rowFunc func() []any
	tag     string
}

func (st *constStatement) ParamOIDs() []uint32    { return nil }
func (st *constStatement) Columns() []wire.Column { return st.cols }

func (st *constStatement) Execute(ctx context.Context, params []any, n wire.Notifier) (wire.Result, error) {
	if st.s.dest.TxStatus() == 'E' {
		return nil, errAborted
	}
	row := st.row
	if st.rowFunc != nil {
		row = st.rowFunc()
	}
	return &sliceResult{rows: [][]any{row}, tag: st.tag}, nil
}
