package sql

import (
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// QuoteIdentIfNeeded quotes an identifier the way Postgres's quote_ident
// does: only when it is not a lowercase plain name or is a keyword that
// cannot stand as a name.
func QuoteIdentIfNeeded(s string) string {
	plain := s != "" && (s[0] == '_' || s[0] >= 'a' && s[0] <= 'z')
	for i := 0; plain && i < len(s); i++ {
		c := s[i]
		plain = c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9'
	}
	if plain {
		res, err := pg_query.Scan(s)
		plain = err == nil && len(res.Tokens) == 1 &&
			(res.Tokens[0].KeywordKind == pg_query.KeywordKind_NO_KEYWORD || res.Tokens[0].KeywordKind == pg_query.KeywordKind_UNRESERVED_KEYWORD)
	}
	if plain {
		return s
	}
	return `"` + strings.ReplaceAll(s, `"`, `""`) + `"`
}
