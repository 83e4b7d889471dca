package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgtype"
)

// An anonymous record (OID 2249, what a function returning a row type gives
// in SELECT f()) has no Go type. A handler passes either its text literal,
// "(1,x)", or its fields as []any. Text-format clients get the literal.
// Binary-format clients, and pgx asks for records in binary, get every field
// typed: a []any element by its Go type, a parsed literal's fields as text,
// which is how Postgres itself types the fields of an untyped literal.

func appendRecord(m *pgtype.Map, buf []byte, format int16, v any) ([]byte, error) {
	fields, isFields := v.([]any)
	if format == pgtype.TextFormatCode {
		if !isFields {
			return appendFormatted(buf, v), nil
		}
		return appendRecordLiteral(m, buf, fields)
	}
	if !isFields {
		s, ok := v.(string)
		if !ok {
			return nil, fmt.Errorf("cannot send %T as a record: want a record literal or []any", v)
		}
		texts, err := parseRecordLiteral(s)
		if err != nil {
			return nil, err
		}
		fields = make([]any, len(texts))
		for i, t := range texts {
			if t != nil {
				fields[i] = *t
			}
		}
	}
	buf = binary.BigEndian.AppendUint32(buf, uint32(len(fields)))
	for _, f := range fields {
		oid := oidForValue(f)
		buf = binary.BigEndian.AppendUint32(buf, oid)
		lenAt := len(buf)
		buf = binary.BigEndian.AppendUint32(buf, 0)
		out, err := appendValue(m, buf, oid, pgtype.BinaryFormatCode, f)
		if err != nil {
			return nil, err
		}
		if out == nil {
			binary.BigEndian.PutUint32(buf[lenAt:], uint32(0xffffffff)) // -1: NULL
			continue
		}
		binary.BigEndian.PutUint32(out[lenAt:], uint32(len(out)-lenAt-4))
		buf = out
	}
	return buf, nil
}

// oidForValue is the type a record field of Go type v is sent as.
func oidForValue(v any) uint32 {
	switch v.(type) {
	case int, int64, uint32:
		return pgtype.Int8OID
	case int32:
		return pgtype.Int4OID
	case int16, int8:
		return pgtype.Int2OID
	case float64:
		return pgtype.Float8OID
	case float32:
		return pgtype.Float4OID
	case bool:
		return pgtype.BoolOID
	case time.Time:
		return pgtype.TimestamptzOID
	case []byte:
		return pgtype.ByteaOID
	case []string:
		return pgtype.TextArrayOID
	case []int64:
		return pgtype.Int8ArrayOID
	case pgtype.Numeric:
		return pgtype.NumericOID
	case []any:
		return pgtype.RecordOID
	}
	return pgtype.TextOID
}

// appendRecordLiteral writes fields the way record_out does: NULL as
// nothing, and quotes around anything empty or containing a delimiter.
func appendRecordLiteral(m *pgtype.Map, buf []byte, fields []any) ([]byte, error) {
	buf = append(buf, '(')
	tmp := make([]byte, 0, 32) // not nil: nil means NULL to appendValue
	for i, f := range fields {
		if i > 0 {
			buf = append(buf, ',')
		}
		if f == nil {
			continue
		}
		out, err := appendValue(m, tmp[:0], oidForValue(f), pgtype.TextFormatCode, f)
		if err != nil {
			return nil, err
		}
		if out == nil {
			continue
		}
		s := string(out)
		if s == "" || strings.ContainsAny(s, "\",()\\ \t\n\r") {
			buf = append(buf, '"')
			buf = append(buf, strings.NewReplacer(`"`, `""`, `\`, `\\`).Replace(s)...)
			buf = append(buf, '"')
		} else {
			buf = append(buf, s...)
		}
	}
	return append(buf, ')'), nil
}

// parseRecordLiteral splits a record literal into its fields, nil for NULL,
// with record_in's quoting rules.
func parseRecordLiteral(s string) ([]*string, error) {
	s = strings.TrimSpace(s)
	if len(s) < 2 || s[0] != '(' || s[len(s)-1] != ')' {
		return nil, errors.New("malformed record literal: missing parentheses")
	}
	body := s[1 : len(s)-1]
	var fields []*string
	var cur strings.Builder
	inQuotes, quoted := false, false
	field := func() {
		if cur.Len() == 0 && !quoted {
			fields = append(fields, nil)
		} else {
			v := cur.String()
			fields = append(fields, &v)
		}
		cur.Reset()
		quoted = false
	}
	for i := 0; i < len(body); i++ {
		switch c := body[i]; {
		case c == '\\' && i+1 < len(body):
			i++
			cur.WriteByte(body[i])
		case c == '"' && inQuotes && i+1 < len(body) && body[i+1] == '"':
			cur.WriteByte('"')
			i++
		case c == '"':
			inQuotes, quoted = !inQuotes, true
		case c == ',' && !inQuotes:
			field()
		default:
			cur.WriteByte(c)
		}
	}
	if inQuotes {
		return nil, errors.New("malformed record literal: unterminated quoted field")
	}
	field()
	return fields, nil
}
