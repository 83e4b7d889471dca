package sql

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Split cuts a query string into its statements, each without its
// terminating semicolon and surrounding white space, skipping empty and
// comment-only ones. Leading comments stay with their statement (a dbt
// "/* {...} */" header, for one). It uses the Postgres scanner, not the
// parser, so statements in the destination's own dialect split too.
//
// Text the scanner cannot tokenise (an unterminated quote or comment) is
// returned whole, as one statement, for the destination to reject. The only
// error is a NUL byte, which Postgres rejects too.
func Split(query string) ([]string, error) {
	if strings.IndexByte(query, 0) >= 0 {
		return nil, nulError()
	}
	if strings.IndexByte(query, ';') < 0 {
		// One statement at most: no need to cross into C.
		return keepSignificant(nil, query), nil
	}
	pieces, err := pg_query.SplitWithScanner(query, true)
	if err != nil {
		return keepSignificant(nil, query), nil
	}
	if covers(query, pieces) {
		var out []string
		for _, p := range pieces {
			out = keepSignificant(out, p)
		}
		return out, nil
	}
	return splitTokens(query), nil
}

// covers checks that pieces account for every statement in query.
// SplitWithScanner cuts only after a statement that contains a keyword and
// counts parentheses without a floor, so it drops a keyword-less statement
// (DuckDB's "SUMMARIZE t") and everything after a stray ")". What lies
// between the pieces must be only white space, semicolons and comments.
func covers(query string, pieces []string) bool {
	pos := 0
	for _, p := range pieces {
		i := strings.Index(query[pos:], p)
		if i < 0 || !insignificant(query[pos:pos+i]) {
			return false
		}
		pos += i + len(p)
	}
	return insignificant(query[pos:])
}

// splitTokens is the fallback splitter: it cuts at every semicolon outside
// parentheses, from the scanner's tokens.
func splitTokens(query string) []string {
	res, err := pg_query.Scan(query)
	if err != nil {
		return keepSignificant(nil, query)
	}
	var out []string
	start, depth := 0, 0
	for _, t := range res.GetTokens() {
		switch t.GetToken() {
		case pg_query.Token_ASCII_40:
			depth++
		case pg_query.Token_ASCII_41:
			depth = max(depth-1, 0)
		case pg_query.Token_ASCII_59:
			if depth == 0 && int(t.GetStart()) >= start && int(t.GetStart()) <= len(query) {
				out = keepSignificant(out, query[start:t.GetStart()])
				start = int(t.GetEnd())
			}
		}
	}
	if start <= len(query) {
		out = keepSignificant(out, query[start:])
	}
	return out
}

// keepSignificant appends the statement s, trimmed, unless it holds nothing
// but white space and comments. Callers cut before the terminating
// semicolon; a ';' at the end of s would be inside a comment.
func keepSignificant(out []string, s string) []string {
	s = strings.TrimSpace(s)
	if insignificant(s) {
		return out
	}
	return append(out, s)
}

// insignificant reports text that holds no statement: white space,
// semicolons and complete comments. An unterminated /* comment is
// significant, so that the destination gets to report it.
func insignificant(s string) bool {
	for i := 0; i < len(s); {
		switch {
		case s[i] == ';' || isArraySpace(s[i]):
			i++
		case strings.HasPrefix(s[i:], "--"):
			nl := strings.IndexAny(s[i:], "\r\n")
			if nl < 0 {
				return true
			}
			i += nl
		case strings.HasPrefix(s[i:], "/*"):
			end, ok := skipBlockComment(s[i:])
			if !ok {
				return false
			}
			i += end
		default:
			return false
		}
	}
	return true
}

// skipBlockComment returns the length of the /* comment at the start of s;
// like Postgres, comments nest.
func skipBlockComment(s string) (int, bool) {
	depth := 0
	for i := 0; i+1 < len(s); {
		switch {
		case s[i] == '/' && s[i+1] == '*':
			depth++
			i += 2
		case s[i] == '*' && s[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i, true
			}
		default:
			i++
		}
	}
	return 0, false
}
