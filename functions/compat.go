package functions

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgcdc/pgcdc/sql"
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
	// follow: the destination session acts on the value (see
	// sql.SettingsSession), and is told when it changes.
	follow bool
}

// transactionSettings depend on the transaction: SHOW asks the
// destination session, and SET changes only the open block.
var transactionSettings = map[string]bool{"transaction_read_only": true, "transaction_isolation": true}

func acceptTimeZone(v string) (string, error) {
	if _, err := sql.LoadTimeZone(v); err != nil {
		return "", &pgconn.PgError{Severity: "ERROR", Code: "22023", Message: err.Error()}
	}
	return v, nil
}

func acceptMilliseconds(v string) (string, error) {
	d, err := sql.ParseMilliseconds(v)
	if err != nil {
		return "", &pgconn.PgError{Severity: "ERROR", Code: "22023",
			Message: fmt.Sprintf("invalid value for parameter \"statement_timeout\": %q", v), Hint: err.Error()}
	}
	return sql.FormatMilliseconds(d), nil
}

func acceptBool(v string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes", "1", "t", "y":
		return "on", nil
	case "off", "false", "no", "0", "f", "n":
		return "off", nil
	}
	return "", &pgconn.PgError{Severity: "ERROR", Code: "22023", Message: fmt.Sprintf("parameter requires a Boolean value, not %q", v)}
}

// acceptIsolation takes the isolation levels the DuckDB replica can give.
// It has one, snapshot isolation, which is Postgres's REPEATABLE READ and
// gives at least what READ COMMITTED and READ UNCOMMITTED promise, but not
// SERIALIZABLE: that is refused, as a Postgres hot standby refuses it.
func acceptIsolation(v string) (string, error) {
	switch l := strings.ToLower(strings.TrimSpace(v)); l {
	case "read uncommitted", "read committed", "repeatable read", "default":
		return l, nil
	case "serializable":
		return "", featureError("cannot use serializable mode: the DuckDB replica provides snapshot isolation (REPEATABLE READ)")
	}
	return "", &pgconn.PgError{Severity: "ERROR", Code: "22023", Message: fmt.Sprintf("invalid value for parameter \"transaction_isolation\": %q", v)}
}

// pgSettings is keyed by the lower-case name, as the parser gives it.
var pgSettings = map[string]*pgSetting{}

func init() {
	for _, s := range []*pgSetting{
		{name: "application_name", report: true},
		{name: "client_encoding", def: "UTF8", report: true, accept: acceptUTF8},
		{name: "DateStyle", def: "ISO, MDY", report: true, accept: acceptISODates},
		{name: "IntervalStyle", def: "postgres", report: true, accept: only("postgres")},
		{name: "TimeZone", def: "UTC", report: true, accept: acceptTimeZone, follow: true},
		{name: "standard_conforming_strings", def: "on", report: true, accept: only("on")},
		{name: "bytea_output", def: "hex", accept: only("hex")},
		{name: "extra_float_digits", def: "1", accept: acceptInt},
		{name: "statement_timeout", def: "0", accept: acceptMilliseconds, follow: true},
		{name: "search_path", def: `"$user", public`, follow: true},
		{name: "lock_timeout", def: "0"},
		{name: "idle_in_transaction_session_timeout", def: "0"},
		{name: "idle_session_timeout", def: "0"},
		{name: "client_min_messages", def: "notice"},
		{name: "default_transaction_isolation", def: "repeatable read", accept: acceptIsolation},
		{name: "transaction_isolation", def: "repeatable read", accept: acceptIsolation, follow: true},
		{name: "default_transaction_read_only", def: "off", accept: acceptBool, follow: true},
		{name: "transaction_read_only", def: "off", accept: acceptBool, follow: true},
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
	// synced: the destination session has been told the startup values.
	synced bool
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
	if !s.settings.synced {
		// The startup parameters' settings (pgJDBC sends TimeZone) reach
		// the destination session before its first statement.
		s.settings.synced = true
		if err := s.settings.applyAll(context.Background(), s.dest); err != nil {
			return nil, err
		}
	}
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
			rowFunc: func() []any {
				if ss, ok := s.dest.(sql.SettingsSession); ok && transactionSettings[key] {
					return []any{ss.TransactionSetting(key)}
				}
				return []any{s.settings.get(key)}
			}}, nil
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
		// ...: the access mode is followed, the isolation level checked.
		modes := sql.ModesOf(set.GetArgs())
		if modes.Isolation != "" {
			if _, err := acceptIsolation(modes.Isolation); err != nil {
				return nil, err
			}
		}
		st := &setStatement{s: s, tag: "SET", modes: &modes, session: set.GetName() == "SESSION CHARACTERISTICS"}
		return st, nil
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
		if key == "search_path" {
			v, ok = searchPathValue(set.GetArgs())
		}
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

// searchPathValue renders SET search_path's list as SHOW prints it: each
// schema an identifier, quoted where it needs to be ('a,b' is one schema
// named "a,b", as in Postgres).
func searchPathValue(args []*pg_query.Node) (string, bool) {
	parts := make([]string, 0, len(args))
	for _, a := range args {
		sv := a.GetAConst().GetSval()
		if sv == nil {
			return "", false
		}
		parts = append(parts, sql.QuoteIdentIfNeeded(sv.GetSval()))
	}
	return strings.Join(parts, ", "), len(parts) > 0
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
	// modes are SET TRANSACTION's (session: SET SESSION CHARACTERISTICS
	// AS TRANSACTION, which sets the defaults).
	modes   *sql.TransactionModes
	session bool
}

func (st *setStatement) ParamOIDs() []uint32    { return nil }
func (st *setStatement) Columns() []wire.Column { return nil }

func (st *setStatement) Execute(ctx context.Context, params []any, n wire.Notifier) (wire.Result, error) {
	if st.s.dest.TxStatus() == 'E' {
		return nil, errAborted
	}
	set := st.s.settings
	change := func(key string, value *string) error {
		before, had := set.values[key]
		if transactionSettings[key] {
			// Only the open block's; SHOW asks the destination.
			v := pgSettings[key].def
			if value != nil {
				v = *value
			}
			return set.apply(ctx, st.s.dest, key, v)
		}
		if value == nil {
			delete(set.values, key)
		} else {
			set.values[key] = *value
		}
		if err := set.apply(ctx, st.s.dest, key, set.get(key)); err != nil {
			if had {
				set.values[key] = before
			} else {
				delete(set.values, key)
			}
			return err
		}
		if def := pgSettings[key]; def.report && set.get(key) != before {
			n.ParameterStatus(def.name, set.get(key))
		}
		return nil
	}
	var err error
	switch {
	case st.resetAll:
		for key := range set.values {
			if e := change(key, nil); e != nil && err == nil {
				err = e
			}
		}
	case st.def != nil:
		err = change(st.key, st.value)
	case st.modes != nil && st.modes.ReadOnly != nil:
		v := map[bool]string{true: "on", false: "off"}[*st.modes.ReadOnly]
		key := "transaction_read_only"
		if st.session {
			key = "default_transaction_read_only"
		}
		err = change(key, &v)
	}
	if err == nil && st.modes != nil && st.session && st.modes.Isolation != "" {
		v := strings.ToLower(st.modes.Isolation)
		err = change("default_transaction_isolation", &v)
	}
	if err != nil {
		return nil, err
	}
	return &sliceResult{tag: st.tag}, nil
}

// apply tells a destination session that follows settings (see
// sql.SettingsSession) a followed setting's value.
func (s *sessionSettings) apply(ctx context.Context, dest sql.Session, key, value string) error {
	ss, ok := dest.(sql.SettingsSession)
	if !ok || !pgSettings[key].follow {
		return nil
	}
	return ss.ApplySetting(ctx, key, value)
}

// applyAll tells the destination session every followed setting that is
// not at its default.
func (s *sessionSettings) applyAll(ctx context.Context, dest sql.Session) error {
	for key, v := range s.values {
		if err := s.apply(ctx, dest, key, v); err != nil {
			return err
		}
	}
	return nil
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
