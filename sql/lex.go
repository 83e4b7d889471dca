package sql

import (
	"iter"
	"strings"
)

// TokenKind is the lexical class of a Token.
type TokenKind int

const (
	// TokenWord is a keyword or an unquoted identifier.
	TokenWord TokenKind = iota + 1
	// TokenQuoted is a "quoted identifier".
	TokenQuoted
	// TokenString is a string literal: '...', E'...' or $tag$...$tag$.
	TokenString
	TokenNumber
	// TokenParam is a parameter placeholder: $1, ? or DuckDB's $name.
	TokenParam
	// TokenPunct is any other single byte: ( ) , ; . = and operators.
	TokenPunct
	// TokenInvalid is text that does not lex, an unterminated string,
	// identifier or comment; it runs to the end of the query.
	TokenInvalid
)

// Token is one lexical token of a statement.
type Token struct {
	Kind TokenKind
	Text string // exactly as written
	Pos  int    // byte offset of Text in the query
}

// Name is a word's or quoted identifier's name the way DuckDB matches it:
// without quotes and in lower case, because DuckDB compares identifiers
// case-insensitively whether they were quoted or not. Other tokens have no
// name.
func (t Token) Name() string {
	switch t.Kind {
	case TokenWord:
		return foldASCII(t.Text)
	case TokenQuoted:
		return foldASCII(strings.ReplaceAll(t.Text[1:len(t.Text)-1], `""`, `"`))
	}
	return ""
}

// Is reports whether t is the keyword or unquoted identifier word, in any
// ASCII case.
func (t Token) Is(word string) bool {
	return t.Kind == TokenWord && equalFoldASCII(t.Text, word)
}

// StringValue is a string literal's value, escapes resolved.
func (t Token) StringValue() string {
	if t.Kind != TokenString {
		return ""
	}
	s := t.Text
	switch {
	case s[0] == '$':
		tag := s[:strings.IndexByte(s[1:], '$')+2]
		return s[len(tag) : len(s)-len(tag)]
	case s[0] == 'e' || s[0] == 'E':
		var b strings.Builder
		body := s[2 : len(s)-1]
		for i := 0; i < len(body); i++ {
			c := body[i]
			switch {
			case c == '\\' && i+1 < len(body):
				i++
				switch body[i] {
				case 'n':
					c = '\n'
				case 't':
					c = '\t'
				case 'r':
					c = '\r'
				default:
					c = body[i]
				}
			case c == '\'' && i+1 < len(body):
				i++ // ''
			}
			b.WriteByte(c)
		}
		return b.String()
	}
	return strings.ReplaceAll(s[1:len(s)-1], "''", "'")
}

// Tokens yields the tokens of query in order, without white space and
// comments. It follows the lexical rules DuckDB shares with Postgres:
// nested /* */ comments, -- comments, a doubled quote standing for itself
// inside strings and identifiers, backslash escapes only in E-strings,
// dollar quoting. Checks
// that look for words in client SQL depend on this agreeing with DuckDB's
// own scanner about what is a comment or a string, so that nothing hides
// in one.
func Tokens(query string) iter.Seq[Token] {
	return func(yield func(Token) bool) {
		for i := 0; i < len(query); {
			c := query[i]
			start := i
			kind := TokenPunct
			switch {
			case isArraySpace(c):
				i++
				continue
			case c == '-' && strings.HasPrefix(query[i:], "--"):
				nl := strings.IndexAny(query[i:], "\r\n")
				if nl < 0 {
					return
				}
				i += nl
				continue
			case c == '/' && strings.HasPrefix(query[i:], "/*"):
				n, ok := skipBlockComment(query[i:])
				if !ok {
					yield(Token{Kind: TokenInvalid, Text: query[i:], Pos: i})
					return
				}
				i += n
				continue
			case c == '\'':
				kind, i = quoted(query, i, '\'', false, TokenString)
			case (c == 'e' || c == 'E') && i+1 < len(query) && query[i+1] == '\'':
				kind, i = quoted(query, i+1, '\'', true, TokenString)
			case c == '"':
				kind, i = quoted(query, i, '"', false, TokenQuoted)
			case c == '$':
				kind, i = dollar(query, i)
			case c == '?':
				kind, i = TokenParam, i+1
			case isIdentStart(c):
				kind = TokenWord
				for i++; i < len(query) && (isIdentStart(query[i]) || isDigit(query[i]) || query[i] == '$'); i++ {
				}
			case isDigit(c) || c == '.' && i+1 < len(query) && isDigit(query[i+1]):
				kind = TokenNumber
				for i++; i < len(query) && (isIdentStart(query[i]) || isDigit(query[i]) || query[i] == '.'); i++ {
				}
			default:
				i++
			}
			if !yield(Token{Kind: kind, Text: query[start:i], Pos: start}) || kind == TokenInvalid {
				return
			}
		}
	}
}

// quoted scans a quoted token whose opening quote is at query[i]; a doubled
// quote stands for itself, and with backslashes a backslash escapes the next
// byte. It returns the kind and the end; an unterminated token is invalid
// and runs to the end.
func quoted(query string, i int, q byte, backslashes bool, kind TokenKind) (TokenKind, int) {
	for j := i + 1; j < len(query); j++ {
		switch query[j] {
		case '\\':
			if backslashes {
				j++
			}
		case q:
			if j+1 < len(query) && query[j+1] == q {
				j++
				continue
			}
			return kind, j + 1
		}
	}
	return TokenInvalid, len(query)
}

// dollar scans what starts with $ at query[i]: a positional ($1) or named
// ($name) parameter, or a dollar-quoted string ($$...$$, $tag$...$tag$).
func dollar(query string, i int) (TokenKind, int) {
	j := i + 1
	if j < len(query) && isDigit(query[j]) {
		for j++; j < len(query) && isDigit(query[j]); j++ {
		}
		return TokenParam, j
	}
	for j < len(query) && (isIdentStart(query[j]) || isDigit(query[j])) {
		j++
	}
	if j >= len(query) || query[j] != '$' {
		if j == i+1 {
			return TokenPunct, j
		}
		return TokenParam, j
	}
	tag := query[i : j+1]
	end := strings.Index(query[j+1:], tag)
	if end < 0 {
		return TokenInvalid, len(query)
	}
	return TokenString, j + 1 + end + len(tag)
}

func isIdentStart(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c == '_' || c >= 0x80
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func foldASCII(s string) string {
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
