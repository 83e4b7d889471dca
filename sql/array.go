package sql

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
)

// arraySpace is what Postgres' array_in treats as white space.
const arraySpace = " \t\n\r\v\f"

func isArraySpace(c byte) bool { return strings.IndexByte(arraySpace, c) >= 0 }

// parseTextArray reads the text form of a one-dimensional text[] the way
// Postgres' array_in does: optional [lo:hi]= bounds, quoted elements with
// backslash escapes, unquoted elements trimmed of unescaped white space, and
// unquoted NULL. pgcdc has no use for NULL elements, so they are an error.
func parseTextArray(s string) ([]string, *pgconn.PgError) {
	p := arrayParser{src: s}
	out, err := p.parse()
	if err != nil {
		if err.Code == codeInvalidTextRepr {
			err.Message = "malformed array literal: " + strconv.Quote(s)
		}
		return nil, err
	}
	return out, nil
}

type arrayParser struct {
	src string
	pos int
}

func (p *arrayParser) malformed(detail string) *pgconn.PgError {
	e := newError(codeInvalidTextRepr, "malformed array literal")
	e.Detail = detail
	return e
}

func (p *arrayParser) skipSpace() {
	for p.pos < len(p.src) && isArraySpace(p.src[p.pos]) {
		p.pos++
	}
}

func (p *arrayParser) peek() (byte, bool) {
	if p.pos >= len(p.src) {
		return 0, false
	}
	return p.src[p.pos], true
}

func (p *arrayParser) parse() ([]string, *pgconn.PgError) {
	p.skipSpace()
	want := -1
	if c, _ := p.peek(); c == '[' {
		n, err := p.bounds()
		if err != nil {
			return nil, err
		}
		want = n
		p.skipSpace()
	}
	if c, ok := p.peek(); !ok || c != '{' {
		return nil, p.malformed(`Array value must start with "{" or dimension information.`)
	}
	p.pos++
	out := []string{}
	p.skipSpace()
	if c, ok := p.peek(); ok && c == '}' {
		p.pos++
	} else {
		for {
			el, err := p.element()
			if err != nil {
				return nil, err
			}
			out = append(out, el)
			p.skipSpace()
			c, ok := p.peek()
			if !ok {
				return nil, p.malformed("Unexpected end of input.")
			}
			p.pos++
			if c == '}' {
				break
			}
			if c != ',' {
				return nil, p.malformed("Unexpected " + strconv.QuoteRune(rune(c)) + " character.")
			}
		}
	}
	p.skipSpace()
	if p.pos != len(p.src) {
		return nil, p.malformed("Junk after closing right brace.")
	}
	if want >= 0 && want != len(out) {
		return nil, p.malformed("Specified array dimensions do not match array contents.")
	}
	return out, nil
}

// bounds reads one "[lo:hi]" or "[hi]" and the "=" after it, returning the
// element count it announces.
func (p *arrayParser) bounds() (int, *pgconn.PgError) {
	p.pos++ // '['
	end := strings.IndexByte(p.src[p.pos:], ']')
	if end < 0 {
		return 0, p.malformed(`Missing "]" after array dimensions.`)
	}
	spec := p.src[p.pos : p.pos+end]
	p.pos += end + 1
	lo, hi := "1", spec
	if i := strings.IndexByte(spec, ':'); i >= 0 {
		lo, hi = spec[:i], spec[i+1:]
	}
	l, err1 := strconv.Atoi(strings.Trim(lo, arraySpace))
	h, err2 := strconv.Atoi(strings.Trim(hi, arraySpace))
	n := h - l + 1
	if err1 != nil || err2 != nil || h < l-1 || n < 0 {
		return 0, p.malformed(`"[" must introduce explicitly-specified array dimensions.`)
	}
	p.skipSpace()
	if c, _ := p.peek(); c == '[' {
		return 0, newError(codeFeatureNotSupported, "multidimensional arrays are not supported")
	}
	if c, ok := p.peek(); !ok || c != '=' {
		return 0, p.malformed(`Missing "=" after array dimensions.`)
	}
	p.pos++
	return n, nil
}

func (p *arrayParser) element() (string, *pgconn.PgError) {
	p.skipSpace()
	c, ok := p.peek()
	if !ok {
		return "", p.malformed("Unexpected end of input.")
	}
	switch c {
	case '{':
		return "", newError(codeFeatureNotSupported, "multidimensional arrays are not supported")
	case '"':
		return p.quoted()
	}
	var b strings.Builder
	keep := 0 // length of b up to its last non-space or escaped byte
	escaped := false
	for {
		c, ok := p.peek()
		if !ok {
			return "", p.malformed("Unexpected end of input.")
		}
		switch c {
		case ',', '}':
			el := b.String()[:keep]
			if el == "" {
				return "", p.malformed("Unexpected " + strconv.QuoteRune(rune(c)) + " character.")
			}
			if !escaped && strings.EqualFold(el, "NULL") {
				return "", errNullElement()
			}
			return el, nil
		case '"', '{':
			return "", p.malformed("Unexpected " + strconv.QuoteRune(rune(c)) + " character.")
		case '\\':
			p.pos++
			if p.pos >= len(p.src) {
				return "", p.malformed("Unexpected end of input.")
			}
			b.WriteByte(p.src[p.pos])
			keep = b.Len()
			escaped = true
		default:
			b.WriteByte(c)
			if !isArraySpace(c) {
				keep = b.Len()
			}
		}
		p.pos++
	}
}

func (p *arrayParser) quoted() (string, *pgconn.PgError) {
	p.pos++ // opening quote
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch c {
		case '"':
			return b.String(), nil
		case '\\':
			if p.pos >= len(p.src) {
				return "", p.malformed("Unexpected end of input.")
			}
			b.WriteByte(p.src[p.pos])
			p.pos++
		default:
			b.WriteByte(c)
		}
	}
	return "", p.malformed("Unexpected end of input.")
}

// FormatTextArray writes a text[] in Postgres' output form, so that
// parseTextArray reads it back unchanged.
func FormatTextArray(a []string) string {
	var b strings.Builder
	b.WriteByte('{')
	for i, s := range a {
		if i > 0 {
			b.WriteByte(',')
		}
		if !needsQuotes(s) {
			b.WriteString(s)
			continue
		}
		b.WriteByte('"')
		for j := 0; j < len(s); j++ {
			if s[j] == '"' || s[j] == '\\' {
				b.WriteByte('\\')
			}
			b.WriteByte(s[j])
		}
		b.WriteByte('"')
	}
	b.WriteByte('}')
	return b.String()
}

func needsQuotes(s string) bool {
	if s == "" || strings.EqualFold(s, "NULL") {
		return true
	}
	return strings.ContainsAny(s, `{}",\`+arraySpace)
}
