package sql

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// CopiesFromClient reports whether query is COPY ... FROM STDIN, which
// reads its data from the client in the COPY sub-protocol.
func CopiesFromClient(query string) bool {
	tree, err := pg_query.Parse(query)
	if err != nil || len(tree.GetStmts()) != 1 {
		return false
	}
	cs := tree.GetStmts()[0].GetStmt().GetCopyStmt()
	return cs != nil && cs.GetIsFrom() && cs.GetFilename() == "" && !cs.GetIsProgram()
}

// CopyFormat is the format of a COPY's data.
type CopyFormat int8

// The COPY formats.
const (
	CopyText CopyFormat = iota
	CopyCSV
	CopyBinary
)

// Copy is a COPY ... TO STDOUT or COPY ... FROM STDIN statement: the data
// travels in the COPY sub-protocol, on the client's connection.
type Copy struct {
	// From is COPY ... FROM STDIN; otherwise it is TO STDOUT.
	From bool
	// Schema and Table name the relation, unquoted as Postgres resolved
	// them; Schema is empty when the name was not qualified. Both are
	// empty for COPY (query) TO STDOUT.
	Schema, Table string
	// Columns is the column list; nil means all of them.
	Columns []string
	// Query is the query of COPY (query) TO STDOUT, deparsed.
	Query   string
	Options CopyOptions
}

// CopyOptions are the format options of a COPY, with Postgres's defaults
// filled in.
type CopyOptions struct {
	Format      CopyFormat
	Delimiter   byte
	Null        string
	Header      bool
	HeaderMatch bool // HEADER MATCH (COPY FROM only)
	Quote       byte
	Escape      byte
	// ForceQuoteAll is FORCE_QUOTE *; ForceQuote, ForceNotNull and
	// ForceNull name columns.
	ForceQuoteAll bool
	ForceQuote    []string
	ForceNotNull  []string
	ForceNull     []string
}

// IsCopy reports whether query starts with the word COPY: a cheap test
// that keeps other statements from paying for ParseCopy.
func IsCopy(query string) bool {
	for t := range Tokens(query) {
		return t.Is("copy")
	}
	return false
}

// ParseCopy recognises a COPY whose data is the client's: TO STDOUT or
// FROM STDIN. ok is false for any other statement, a COPY to or from a
// file or program included, which the destination judges itself. An error
// means the COPY is the client's but its options are wrong, reported as
// Postgres reports them.
func ParseCopy(query string) (c *Copy, ok bool, err error) {
	tree, perr := pg_query.Parse(query)
	if perr != nil || len(tree.GetStmts()) != 1 {
		return nil, false, nil
	}
	cs := tree.GetStmts()[0].GetStmt().GetCopyStmt()
	if cs == nil || cs.GetFilename() != "" || cs.GetIsProgram() {
		return nil, false, nil
	}
	c = &Copy{From: cs.GetIsFrom()}
	if rv := cs.GetRelation(); rv != nil {
		if rv.GetCatalogname() != "" {
			return nil, true, newError(codeFeatureNotSupported, "cross-database references are not implemented: %s.%s.%s",
				rv.GetCatalogname(), rv.GetSchemaname(), rv.GetRelname())
		}
		c.Schema, c.Table = rv.GetSchemaname(), rv.GetRelname()
	}
	for _, n := range cs.GetAttlist() {
		c.Columns = append(c.Columns, n.GetString_().GetSval())
	}
	if q := cs.GetQuery(); q != nil {
		if c.From {
			return nil, true, newError(codeSyntaxError, "syntax error at or near \"(\"")
		}
		out, err := pg_query.Deparse(&pg_query.ParseResult{Version: tree.GetVersion(), Stmts: []*pg_query.RawStmt{{Stmt: q}}})
		if err != nil {
			return nil, true, newError(codeSyntaxError, "%s", err.Error())
		}
		c.Query = out
	}
	if cs.GetWhereClause() != nil {
		return nil, true, newError(codeFeatureNotSupported, "COPY FROM ... WHERE is not supported")
	}
	if err := c.Options.parse(cs.GetOptions(), c.From); err != nil {
		return nil, true, err
	}
	return c, true, nil
}

// parse reads COPY's option list and checks it as Postgres's
// ProcessCopyOptions does.
func (o *CopyOptions) parse(opts []*pg_query.Node, from bool) *pgconn.PgError {
	seen := map[string]bool{}
	var delim, null, quote, escape *string
	for _, n := range opts {
		d := n.GetDefElem()
		if d == nil {
			continue
		}
		name := d.GetDefname()
		if seen[name] {
			return newError(codeSyntaxError, "conflicting or redundant options")
		}
		seen[name] = true
		switch name {
		case "format":
			switch strings.ToLower(defString(d)) {
			case "text":
				o.Format = CopyText
			case "csv":
				o.Format = CopyCSV
			case "binary":
				o.Format = CopyBinary
			default:
				return newError(codeInvalidParameterValue, "COPY format \"%s\" not recognized", defString(d))
			}
		case "delimiter":
			s := defString(d)
			delim = &s
		case "null":
			s := defString(d)
			null = &s
		case "quote":
			s := defString(d)
			quote = &s
		case "escape":
			s := defString(d)
			escape = &s
		case "header":
			switch v := strings.ToLower(defString(d)); v {
			case "", "true", "on", "1":
				o.Header = true
			case "false", "off", "0":
			case "match":
				if !from {
					return newError(codeFeatureNotSupported, "cannot use \"%s\" with HEADER in COPY TO", v)
				}
				o.Header, o.HeaderMatch = true, true
			default:
				return newError(codeInvalidParameterValue, "%s requires a Boolean value or \"match\"", name)
			}
		case "force_quote":
			if d.GetArg().GetAStar() != nil {
				o.ForceQuoteAll = true
			} else {
				o.ForceQuote = defList(d)
			}
		case "force_not_null":
			o.ForceNotNull = defList(d)
		case "force_null":
			o.ForceNull = defList(d)
		case "encoding":
			if e := strings.ToUpper(strings.ReplaceAll(defString(d), "-", "")); e != "UTF8" && e != "UNICODE" {
				return newError(codeFeatureNotSupported, "COPY encoding %q is not supported: pgcdc speaks UTF8 only", defString(d))
			}
		case "freeze":
			// Only an optimisation hint in Postgres.
		default:
			return newError(codeSyntaxError, "option \"%s\" not recognized", name)
		}
	}
	csv, binary := o.Format == CopyCSV, o.Format == CopyBinary
	if binary && delim != nil {
		return newError(codeSyntaxError, "cannot specify DELIMITER in BINARY mode")
	}
	if binary && null != nil {
		return newError(codeSyntaxError, "cannot specify NULL in BINARY mode")
	}
	if binary && o.Header {
		return newError(codeFeatureNotSupported, "cannot specify HEADER in BINARY mode")
	}
	if !csv && quote != nil {
		return newError(codeFeatureNotSupported, "COPY QUOTE requires CSV mode")
	}
	if !csv && escape != nil {
		return newError(codeFeatureNotSupported, "COPY ESCAPE requires CSV mode")
	}
	if !csv && (o.ForceQuoteAll || o.ForceQuote != nil) {
		return newError(codeFeatureNotSupported, "COPY FORCE_QUOTE requires CSV mode")
	}
	if !csv && o.ForceNotNull != nil {
		return newError(codeFeatureNotSupported, "COPY FORCE_NOT_NULL requires CSV mode")
	}
	if !csv && o.ForceNull != nil {
		return newError(codeFeatureNotSupported, "COPY FORCE_NULL requires CSV mode")
	}
	if from && (o.ForceQuoteAll || o.ForceQuote != nil) {
		return newError(codeFeatureNotSupported, "COPY FORCE_QUOTE cannot be used with COPY FROM")
	}
	if !from && (o.ForceNotNull != nil || o.ForceNull != nil) {
		return newError(codeFeatureNotSupported, "COPY FORCE_NOT_NULL and FORCE_NULL cannot be used with COPY TO")
	}
	o.Delimiter, o.Null = '\t', `\N`
	if csv {
		o.Delimiter, o.Null, o.Quote = ',', "", '"'
	}
	if delim != nil {
		if len(*delim) != 1 {
			return newError(codeFeatureNotSupported, "COPY delimiter must be a single one-byte character")
		}
		o.Delimiter = (*delim)[0]
	}
	if null != nil {
		o.Null = *null
	}
	if quote != nil {
		if len(*quote) != 1 {
			return newError(codeFeatureNotSupported, "COPY quote must be a single one-byte character")
		}
		o.Quote = (*quote)[0]
	}
	o.Escape = o.Quote
	if escape != nil {
		if len(*escape) != 1 {
			return newError(codeFeatureNotSupported, "COPY escape must be a single one-byte character")
		}
		o.Escape = (*escape)[0]
	}
	if o.Delimiter == '\r' || o.Delimiter == '\n' {
		return newError(codeInvalidParameterValue, "COPY delimiter cannot be newline or carriage return")
	}
	if strings.ContainsAny(o.Null, "\r\n") {
		return newError(codeInvalidParameterValue, "COPY null representation cannot use newline or carriage return")
	}
	if !csv && !binary && strings.IndexByte(`\.abcdefghijklmnopqrstuvwxyz0123456789`, o.Delimiter) >= 0 {
		return newError(codeInvalidParameterValue, "COPY delimiter cannot be \"%s\"", string(o.Delimiter))
	}
	if csv && o.Delimiter == o.Quote {
		return newError(codeInvalidParameterValue, "COPY delimiter and quote must be different")
	}
	if strings.IndexByte(o.Null, o.Delimiter) >= 0 && !binary {
		return newError(codeInvalidParameterValue, "COPY delimiter character must not appear in the NULL specification")
	}
	return nil
}

// defString is an option's argument as text; a bare option (HEADER) has
// none.
func defString(d *pg_query.DefElem) string {
	a := d.GetArg()
	switch {
	case a == nil:
		return ""
	case a.GetString_() != nil:
		return a.GetString_().GetSval()
	case a.GetBoolean() != nil:
		if a.GetBoolean().GetBoolval() {
			return "true"
		}
		return "false"
	case a.GetInteger() != nil:
		return strconv.Itoa(int(a.GetInteger().GetIval()))
	case a.GetTypeName() != nil:
		names := a.GetTypeName().GetNames()
		if len(names) > 0 {
			return names[len(names)-1].GetString_().GetSval()
		}
	}
	return ""
}

func defList(d *pg_query.DefElem) []string {
	out := []string{}
	for _, n := range d.GetArg().GetList().GetItems() {
		out = append(out, n.GetString_().GetSval())
	}
	return out
}
