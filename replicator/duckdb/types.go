package duckdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// Postgres type OIDs the mapping distinguishes.
const (
	oidBool        = 16
	oidBytea       = 17
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidOID         = 26
	oidJSON        = 114
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTime        = 1083
	oidTimestamp   = 1114
	oidTimestamptz = 1184
	oidInterval    = 1186
	oidTimetz      = 1266
	oidBox         = 603
	oidBit         = 1560
	oidVarbit      = 1562
	oidNumeric     = 1700
	oidUUID        = 2950
	oidJSONB       = 3802
)

// columnType is the DuckDB type a source column is stored as.
func columnType(c replica.Column) string {
	if c.Hint != nil {
		return hintType(*c.Hint)
	}
	if c.ElemOID != 0 {
		elem := scalarType(c.ElemOID, c.TypeMod)
		if !listable(c.ElemOID, c.Dims) {
			return "VARCHAR"
		}
		return elem + strings.Repeat("[]", c.Dims)
	}
	return scalarType(c.TypeOID, c.TypeMod)
}

// listable reports whether arrays of this element type become DuckDB
// lists. DuckDB cannot read BIT from JSON, and bytea needs a per-element
// conversion that is only written for one dimension.
func listable(elemOID uint32, dims int) bool {
	switch {
	case elemOID == oidBit || elemOID == oidVarbit:
		return false
	case elemOID == oidBox:
		return false // box is the one built-in type whose array delimiter is ';', not ','

	case elemOID == oidBytea:
		return dims == 1
	}
	return dims >= 1
}

func scalarType(oid uint32, typmod int32) string {
	switch oid {
	case oidBool:
		return "BOOLEAN"
	case oidInt2:
		return "SMALLINT"
	case oidInt4:
		return "INTEGER"
	case oidInt8:
		return "BIGINT"
	case oidOID:
		return "UINTEGER"
	case oidFloat4:
		return "FLOAT"
	case oidFloat8:
		return "DOUBLE"
	case oidNumeric:
		if p, s, ok := numericTypmod(typmod); ok && p <= 38 {
			return fmt.Sprintf("DECIMAL(%d,%d)", p, s)
		}
		// Unconstrained numeric has up to 131072 digits and NaN; DuckDB's
		// DECIMAL stops at 38. Text keeps every digit.
		return "VARCHAR"
	case oidBytea:
		return "BLOB"
	case oidDate:
		return "DATE"
	case oidTime:
		return "TIME"
	case oidTimetz:
		return "TIMETZ"
	case oidTimestamp:
		return "TIMESTAMP"
	case oidTimestamptz:
		return "TIMESTAMPTZ"
	case oidInterval:
		return "INTERVAL"
	case oidUUID:
		return "UUID"
	case oidJSON, oidJSONB:
		return "JSON"
	case oidBit, oidVarbit:
		return "BIT"
	default:
		// text, varchar, char, name and every type without an exact DuckDB
		// counterpart keep Postgres's text form, which is lossless.
		return "VARCHAR"
	}
}

// maxDecimal is the most digits DuckDB's DECIMAL holds.
const maxDecimal = 38

// CheckTable implements replica.Destination: DuckDB's DECIMAL holds at most
// 38 digits, which a decimal hint must respect.
func (d *Destination) CheckTable(t *replica.Table) error {
	for _, c := range t.Columns {
		if h := c.Hint; h != nil && h.DataType == "decimal" && h.Precision > maxDecimal {
			return fmt.Errorf("columns: %s.%s: DuckDB's DECIMAL holds at most %d digits, not %d; use data_type text or double",
				t.QualifiedSource(), c.Name, maxDecimal, h.Precision)
		}
	}
	return nil
}

func hintType(h replica.TypeHint) string {
	switch h.DataType {
	case "text":
		// DuckDB's VARCHAR has no length limit: dlt's precision of text
		// has nothing to set.
		return "VARCHAR"
	case "double":
		return "DOUBLE"
	case "bool":
		return "BOOLEAN"
	case "timestamp":
		// TIMESTAMPTZ has microseconds only; without a time zone, dlt's
		// precision picks DuckDB's second, millisecond or nanosecond type.
		if h.WithTimezone() {
			return "TIMESTAMPTZ"
		}
		switch {
		case h.Precision == 0 || h.Precision > 3 && h.Precision <= 6:
			return "TIMESTAMP"
		case h.Precision <= 3:
			return "TIMESTAMP_MS"
		}
		return "TIMESTAMP_NS"
	case "bigint":
		// dlt's precision of an integer is its size in bits.
		switch {
		case h.Precision == 0:
			return "BIGINT"
		case h.Precision <= 8:
			return "TINYINT"
		case h.Precision <= 16:
			return "SMALLINT"
		case h.Precision <= 32:
			return "INTEGER"
		case h.Precision <= 64:
			return "BIGINT"
		}
		return "HUGEINT"
	case "binary":
		return "BLOB"
	case "json", "complex":
		return "JSON"
	case "decimal":
		p, s := h.Precision, h.Scale
		if p == 0 {
			p, s = 38, 9
		}
		return fmt.Sprintf("DECIMAL(%d,%d)", p, s)
	case "wei":
		return "DECIMAL(38,0)"
	case "date":
		return "DATE"
	case "time":
		return "TIME"
	}
	return "VARCHAR"
}

// numericTypmod decodes numeric(p,s) from atttypmod. Since Postgres 15 the
// scale is a signed 11-bit field and may be negative or exceed the
// precision; DECIMAL allows neither, so those report !ok.
func numericTypmod(typmod int32) (p, s int, ok bool) {
	if typmod < 4 {
		return 0, 0, false
	}
	t := typmod - 4
	p = int(t>>16) & 0xffff
	s = (int(t&0x7ff) ^ 1024) - 1024
	return p, s, s >= 0 && s <= p
}

// castExpr is the SQL that turns src, a VARCHAR holding the (converted)
// source text for column c, into c's DuckDB type.
func castExpr(c replica.Column, src string) string {
	target := columnType(c)
	if target == "VARCHAR" {
		return src
	}
	if c.ElemOID != 0 && c.Hint == nil {
		if c.ElemOID == oidBytea {
			return fmt.Sprintf("list_transform(CAST(CAST(%s AS JSON) AS VARCHAR[]), lambda x: unhex(substr(x, 3)))", src)
		}
		return fmt.Sprintf("CAST(CAST(%s AS JSON) AS %s)", src, target)
	}
	if c.TypeOID == oidBytea && target == "BLOB" {
		// Postgres prints bytea as \x followed by hex digits.
		return fmt.Sprintf("unhex(substr(%s, 3))", src)
	}
	return fmt.Sprintf("CAST(%s AS %s)", src, target)
}

// converter rewrites one source text value into the form castExpr reads.
type converter func([]byte) ([]byte, error)

// converterFor returns the rewrite for column c, or nil when DuckDB reads
// Postgres's text as is.
func converterFor(c replica.Column) converter {
	if columnType(c) == "VARCHAR" {
		return nil
	}
	if c.ElemOID != 0 && c.Hint == nil {
		elem := scalarConverter(c.ElemOID)
		raw := c.ElemOID == oidJSON || c.ElemOID == oidJSONB
		boolean := c.ElemOID == oidBool
		return func(v []byte) ([]byte, error) { return arrayToJSON(v, elem, raw, boolean) }
	}
	return scalarConverter(c.TypeOID)
}

func scalarConverter(oid uint32) converter {
	switch oid {
	case oidDate, oidTimestamp, oidTimestamptz:
		return convertBC
	case oidInterval:
		return convertInterval
	}
	return nil
}

// convertBC turns Postgres's "0044-03-15 BC" into the astronomical year
// DuckDB reads, "-0043-03-15" (1 BC is year 0).
func convertBC(v []byte) ([]byte, error) {
	if !bytes.HasSuffix(v, []byte(" BC")) {
		return v, nil
	}
	body := v[:len(v)-3]
	dash := bytes.IndexByte(body, '-')
	if dash <= 0 {
		return nil, fmt.Errorf("cannot read date %q", v)
	}
	year, err := strconv.Atoi(string(body[:dash]))
	if err != nil {
		return nil, fmt.Errorf("cannot read date %q", v)
	}
	astro := 1 - year
	var out []byte
	if astro < 0 {
		out = fmt.Appendf(nil, "-%04d", -astro)
	} else {
		out = fmt.Appendf(nil, "%04d", astro)
	}
	return append(out, body[dash:]...), nil
}

// convertInterval turns Postgres's interval output (IntervalStyle
// postgres, which pgcdc sets on its source sessions), such as
// "1 year 2 mons -3 days +04:05:06.5", into months, days and microseconds,
// the three fields both systems store, so nothing is rounded or folded.
func convertInterval(v []byte) ([]byte, error) {
	fields := strings.Fields(string(v))
	var months, days, micros int64
	for i := 0; i < len(fields); i++ {
		f := fields[i]
		if strings.Contains(f, ":") {
			us, err := parseClock(f)
			if err != nil {
				return nil, fmt.Errorf("cannot read interval %q: %w", v, err)
			}
			micros += us
			continue
		}
		if i+1 >= len(fields) {
			return nil, fmt.Errorf("cannot read interval %q", v)
		}
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("cannot read interval %q", v)
		}
		i++
		switch unit := fields[i]; unit {
		case "year", "years":
			months += n * 12
		case "mon", "mons":
			months += n
		case "day", "days":
			days += n
		default:
			return nil, fmt.Errorf("cannot read interval %q: unit %q", v, unit)
		}
	}
	return fmt.Appendf(nil, "%d months %d days %d microseconds", months, days, micros), nil
}

// parseClock reads [+-]H:MM:SS[.ffffff], where H may exceed 24.
func parseClock(s string) (int64, error) {
	neg := false
	if s[0] == '-' || s[0] == '+' {
		neg = s[0] == '-'
		s = s[1:]
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	h, err1 := strconv.ParseInt(parts[0], 10, 64)
	m, err2 := strconv.ParseInt(parts[1], 10, 64)
	sec, frac, _ := strings.Cut(parts[2], ".")
	sc, err3 := strconv.ParseInt(sec, 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || len(frac) > 6 {
		return 0, fmt.Errorf("bad time %q", s)
	}
	var us int64
	if frac != "" {
		f, err := strconv.ParseInt(frac+strings.Repeat("0", 6-len(frac)), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("bad time %q", s)
		}
		us = f
	}
	total := ((h*60+m)*60+sc)*1_000_000 + us
	if neg {
		total = -total
	}
	return total, nil
}

// arrayToJSON turns a Postgres array literal into JSON, which DuckDB casts
// into a LIST exactly. Elements become JSON strings (after elem), except
// NULL, booleans and raw json elements.
func arrayToJSON(v []byte, elem converter, raw, boolean bool) ([]byte, error) {
	if len(v) > 0 && v[0] == '[' {
		// "[0:2]={...}": explicit bounds. A LIST has no lower bound, so
		// storing it would silently shift every index.
		return nil, fmt.Errorf("array %q has non-default bounds, which a DuckDB list cannot keep; store the column as text with the columns hint {\"data_type\": \"text\"}", v)
	}
	p := &arrayParser{s: v}
	var out bytes.Buffer
	if err := p.value(&out, elem, raw, boolean); err != nil {
		return nil, err
	}
	if p.i != len(v) {
		return nil, fmt.Errorf("cannot read array %q: trailing data", v)
	}
	return out.Bytes(), nil
}

type arrayParser struct {
	s []byte
	i int
}

func (p *arrayParser) value(out *bytes.Buffer, elem converter, raw, boolean bool) error {
	if p.i >= len(p.s) || p.s[p.i] != '{' {
		return fmt.Errorf("cannot read array %q", p.s)
	}
	p.i++
	out.WriteByte('[')
	if p.i < len(p.s) && p.s[p.i] == '}' {
		p.i++
		out.WriteByte(']')
		return nil
	}
	for n := 0; ; n++ {
		if n > 0 {
			out.WriteByte(',')
		}
		if p.i >= len(p.s) {
			return fmt.Errorf("cannot read array %q: unterminated", p.s)
		}
		switch p.s[p.i] {
		case '{':
			if err := p.value(out, elem, raw, boolean); err != nil {
				return err
			}
		case '"':
			p.i++
			var e []byte
			for {
				if p.i >= len(p.s) {
					return fmt.Errorf("cannot read array %q: unterminated quote", p.s)
				}
				c := p.s[p.i]
				if c == '\\' && p.i+1 < len(p.s) {
					e = append(e, p.s[p.i+1])
					p.i += 2
					continue
				}
				p.i++
				if c == '"' {
					break
				}
				e = append(e, c)
			}
			if err := writeElem(out, e, elem, raw, boolean); err != nil {
				return err
			}
		default:
			start := p.i
			for p.i < len(p.s) && p.s[p.i] != ',' && p.s[p.i] != '}' {
				p.i++
			}
			e := p.s[start:p.i]
			if string(e) == "NULL" {
				out.WriteString("null")
			} else if err := writeElem(out, e, elem, raw, boolean); err != nil {
				return err
			}
		}
		if p.i >= len(p.s) {
			return fmt.Errorf("cannot read array %q: unterminated", p.s)
		}
		switch p.s[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			out.WriteByte(']')
			return nil
		default:
			return fmt.Errorf("cannot read array %q at byte %d", p.s, p.i)
		}
	}
}

func writeElem(out *bytes.Buffer, e []byte, elem converter, raw, boolean bool) error {
	switch {
	case raw:
		if !json.Valid(e) {
			return fmt.Errorf("array element %q is not valid JSON", e)
		}
		out.Write(e)
		return nil
	case boolean:
		if string(e) == "t" {
			out.WriteString("true")
		} else {
			out.WriteString("false")
		}
		return nil
	}
	if elem != nil {
		var err error
		if e, err = elem(e); err != nil {
			return err
		}
	}
	appendJSONString(out, e)
	return nil
}

// appendJSONString writes s as a JSON string, as encoding/json does without
// HTML escaping (invalid UTF-8 becomes U+FFFD), but without allocating: it
// runs for every element of every array a snapshot loads.
func appendJSONString(out *bytes.Buffer, s []byte) {
	const hex = "0123456789abcdef"
	out.WriteByte('"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				out.WriteByte('\\')
				out.WriteByte(c)
			case c == '\n':
				out.WriteString(`\n`)
			case c == '\r':
				out.WriteString(`\r`)
			case c == '\t':
				out.WriteString(`\t`)
			case c < 0x20:
				out.WriteString(`\u00`)
				out.WriteByte(hex[c>>4])
				out.WriteByte(hex[c&0xf])
			default:
				out.WriteByte(c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out.WriteString(`\ufffd`)
		case r == '\u2028' || r == '\u2029':
			out.WriteString(`\u202`)
			out.WriteByte(hex[r&0xf])
		default:
			out.Write(s[i : i+size])
		}
		i += size
	}
	out.WriteByte('"')
}
