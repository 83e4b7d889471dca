package wire

import (
	"bytes"
	"context"
	"database/sql/driver"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// DecodeParam turns one Bind parameter into the Go value handed to
// Statement.Execute. The types are fixed so that handlers need only a short
// type switch, whatever the client and whichever format it chose:
//
//	NULL                                   nil
//	text, varchar, bpchar, name, unknown,
//	  unspecified (OID 0), json, jsonb     string (json as its text)
//	bool                                   bool
//	int2, int4, int8, oid                  int64
//	float4, float8                         float64
//	numeric                                string (exact decimal text, or NaN/Infinity)
//	date, timestamp, timestamptz           time.Time ("infinity"/"-infinity" as string)
//	bytea                                  []byte
//	uuid                                   string (canonical 8-4-4-4-12 form)
//	text-like[]                            []string
//	int2[], int4[], int8[]                 []int64
//	float4[], float8[]                     []float64
//	bool[]                                 []bool
//	other arrays, or arrays with NULLs     []any (elements converted as above)
//	other types pgtype knows               what its codec decodes to (e.g. pgtype.Interval)
//	record                                 string (text format) or []byte (binary)
//	types pgtype does not know             string (text format) or []byte (binary)
//
// m must not be shared between goroutines. A malformed value yields a
// *pgconn.PgError with SQLSTATE 22P02 (text) or 22P03 (binary).
func DecodeParam(m *pgtype.Map, oid uint32, format int16, src []byte) (any, error) {
	if src == nil {
		return nil, nil
	}
	if format != pgtype.TextFormatCode && format != pgtype.BinaryFormatCode {
		return nil, errorf(codeProtocolViolation, "unsupported format code: %d", format)
	}
	binary := format == pgtype.BinaryFormatCode
	switch oid {
	case 0, pgtype.UnknownOID, pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.JSONOID:
		// The binary form of these types is their text.
		return string(src), nil
	case pgtype.JSONBOID:
		if !binary {
			return string(src), nil
		}
		if len(src) == 0 || src[0] != 1 {
			return nil, errorf(codeInvalidBinaryRepr, "unsupported jsonb version number")
		}
		return string(src[1:]), nil
	case pgLSNOID:
		return decodeLSN(format, src)
	case pgtype.ByteaOID, pgtype.RecordOID:
		// Postgres cannot take an anonymous record as input either; pass
		// it through for the handler to make sense of.
		if binary {
			return bytes.Clone(src), nil
		}
		if oid == pgtype.RecordOID {
			return string(src), nil
		}
	}
	typ, ok := m.TypeForOID(oid)
	if !ok {
		if binary {
			return bytes.Clone(src), nil
		}
		return string(src), nil
	}
	if arr, ok := typ.Codec.(*pgtype.ArrayCodec); ok {
		if v, ok := scanTypedArray(m, oid, format, src, arr.ElementType.OID); ok {
			return v, nil
		}
	}
	v, err := typ.Codec.DecodeValue(m, oid, format, src)
	if err != nil && !binary {
		if t, ok := parseTimeText(oid, string(src)); ok {
			return t, nil
		}
	}
	if err != nil {
		if binary {
			return nil, errorf(codeInvalidBinaryRepr, "incorrect binary data format for type %s", typ.Name)
		}
		return nil, errorf(codeInvalidTextRepr, "invalid input syntax for type %s: \"%s\"", typ.Name, string(src))
	}
	return normalizeParam(oid, v), nil
}

// scanTypedArray decodes the common one-dimensional arrays into plain Go
// slices. It reports false (and the caller falls back to []any) for element
// types it does not cover, NULL elements and other shapes.
func scanTypedArray(m *pgtype.Map, oid uint32, format int16, src []byte, elem uint32) (any, bool) {
	var err error
	var out any
	switch elem {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID:
		var v []string
		err = m.Scan(oid, format, src, &v)
		out = v
	case pgtype.Int2OID, pgtype.Int4OID, pgtype.Int8OID:
		var v []int64
		err = m.Scan(oid, format, src, &v)
		out = v
	case pgtype.Float4OID, pgtype.Float8OID:
		var v []float64
		err = m.Scan(oid, format, src, &v)
		out = v
	case pgtype.BoolOID:
		var v []bool
		err = m.Scan(oid, format, src, &v)
		out = v
	default:
		return nil, false
	}
	return out, err == nil
}

func normalizeParam(oid uint32, v any) any {
	switch x := v.(type) {
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case uint32:
		return int64(x)
	case float32:
		return float64(x)
	case pgtype.Numeric:
		s, err := x.Value()
		if err != nil || s == nil {
			return nil
		}
		return s
	case pgtype.InfinityModifier:
		if x < 0 {
			return "-infinity"
		}
		return "infinity"
	case [16]byte:
		if oid == pgtype.UUIDOID {
			return formatUUID(x)
		}
	case []any:
		for i := range x {
			x[i] = normalizeParam(0, x[i])
		}
	}
	return v
}

func formatUUID(u [16]byte) string {
	var b [36]byte
	hex.Encode(b[0:8], u[0:4])
	b[8] = '-'
	hex.Encode(b[9:13], u[4:6])
	b[13] = '-'
	hex.Encode(b[14:18], u[6:8])
	b[18] = '-'
	hex.Encode(b[19:23], u[8:10])
	b[23] = '-'
	hex.Encode(b[24:], u[10:])
	return string(b[:])
}

// parseTimeText accepts the ISO 8601 spellings Postgres takes but pgtype's
// strict parser rejects (a "T" separator, no zone), read as UTC because that
// is the TimeZone we report.
func parseTimeText(oid uint32, s string) (time.Time, bool) {
	var layouts []string
	switch oid {
	case pgtype.TimestamptzOID, pgtype.TimestampOID:
		layouts = []string{
			time.RFC3339Nano,
			"2006-01-02 15:04:05.999999999Z07:00",
			"2006-01-02 15:04:05.999999999Z07",
			"2006-01-02T15:04:05.999999999",
			"2006-01-02 15:04:05.999999999",
			"2006-01-02",
		}
	case pgtype.DateOID:
		layouts = []string{"2006-01-02", time.RFC3339Nano}
	default:
		return time.Time{}, false
	}
	s = strings.TrimSpace(s)
	for _, l := range layouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// columnDefaults fills what handlers commonly leave zero, so that clients
// which look at RowDescription closely (JDBC reads the type size) see what
// Postgres would send. OID 0 becomes text. A zero TypeSize means the
// handler filled in neither size nor modifier; the modifier is left alone
// otherwise, because 0 is a real one (timestamp(0)).
func columnDefaults(cols []Column) []Column {
	if cols == nil {
		return nil
	}
	out := make([]Column, len(cols))
	for i, c := range cols {
		if c.OID == 0 {
			c.OID = pgtype.TextOID
		}
		if c.TypeSize == 0 {
			c.TypeSize = typeSize(c.OID)
			if c.TypeMod == 0 {
				c.TypeMod = -1
			}
		}
		out[i] = c
	}
	return out
}

func typeSize(oid uint32) int16 {
	switch oid {
	case pgtype.BoolOID, pgtype.QCharOID:
		return 1
	case pgtype.Int2OID:
		return 2
	case pgtype.Int4OID, pgtype.Float4OID, pgtype.DateOID, pgtype.OIDOID:
		return 4
	case pgtype.Int8OID, pgtype.Float8OID, pgtype.TimestampOID, pgtype.TimestamptzOID, pgtype.TimeOID, pgLSNOID:
		return 8
	case pgtype.TimetzOID:
		return 12
	case pgtype.UUIDOID, pgtype.IntervalOID:
		return 16
	case pgtype.NameOID:
		return 64
	}
	return -1
}

func isTextLike(oid uint32) bool {
	switch oid {
	case pgtype.TextOID, pgtype.VarcharOID, pgtype.BPCharOID, pgtype.NameOID, pgtype.UnknownOID:
		return true
	}
	return false
}

// hasBinaryForm reports whether values of oid can be sent in binary format.
func hasBinaryForm(m *pgtype.Map, oid uint32) bool {
	if oid == pgLSNOID {
		return true
	}
	_, ok := m.TypeForOID(oid)
	return ok
}

// pgLSNOID is pg_lsn, which pgtype does not know. Our functions return
// LSNs, and clients that ask for every column in binary (node-postgres with
// binary: true) need its binary form: the position as a uint64.
const pgLSNOID = 3220

// appendLSN writes an LSN given as its text form ("16/B374D848") or as a
// number.
func appendLSN(buf []byte, format int16, v any) ([]byte, error) {
	var lsn uint64
	switch x := v.(type) {
	case uint64:
		lsn = x
	case int64:
		lsn = uint64(x)
	case string:
		hi, lo, ok := strings.Cut(x, "/")
		h, err1 := strconv.ParseUint(hi, 16, 32)
		l, err2 := strconv.ParseUint(lo, 16, 32)
		if !ok || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("invalid pg_lsn %q", x)
		}
		lsn = h<<32 | l
	default:
		return nil, fmt.Errorf("cannot send %T as pg_lsn", v)
	}
	if format == pgtype.BinaryFormatCode {
		return binary.BigEndian.AppendUint64(buf, lsn), nil
	}
	return fmt.Appendf(buf, "%X/%X", lsn>>32, uint32(lsn)), nil
}

// decodeLSN reads a pg_lsn parameter into its text form.
func decodeLSN(format int16, src []byte) (any, error) {
	if format == pgtype.BinaryFormatCode {
		if len(src) != 8 {
			return nil, errorf(codeInvalidBinaryRepr, "incorrect binary data format for type pg_lsn")
		}
		lsn := binary.BigEndian.Uint64(src)
		return fmt.Sprintf("%X/%X", lsn>>32, uint32(lsn)), nil
	}
	out, err := appendLSN(nil, pgtype.TextFormatCode, string(src))
	if err != nil {
		return nil, errorf(codeInvalidTextRepr, "invalid input syntax for type pg_lsn: \"%s\"", string(src))
	}
	return string(out), nil
}

// appendValue appends the wire form of v for a column of type oid. It
// returns nil (and leaves buf alone) for NULL, so buf must not be nil: an
// empty string has to stay distinguishable from NULL.
func appendValue(m *pgtype.Map, buf []byte, oid uint32, format int16, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	switch oid {
	case pgtype.RecordOID:
		return appendRecord(m, buf, format, v)
	case pgLSNOID:
		return appendLSN(buf, format, v)
	}
	if format == pgtype.TextFormatCode {
		if !hasBinaryForm(m, oid) {
			return appendFormatted(buf, v), nil
		}
		if iv, ok := v.(pgtype.Interval); ok && oid == pgtype.IntervalOID && iv.Valid {
			return appendInterval(buf, iv), nil
		}
		if t, ok := v.(time.Time); ok && oid == pgtype.TimestamptzOID && t.Year() >= 1 && t.Year() <= 9999 {
			// pgtype writes "Z"; libpq-based and JDBC parsers expect the
			// offset as Postgres prints it in the time's zone (the
			// session's TimeZone): "+00", "-05", "+05:30".
			return appendOffset(t.AppendFormat(buf, "2006-01-02 15:04:05.999999"), t), nil
		}
	}
	switch {
	case isTextLike(oid):
		switch v.(type) {
		case string, []byte:
		default:
			// Handlers may hand a number or time to a text column; print it
			// rather than fail the whole result.
			if valuer, ok := v.(driver.Valuer); ok {
				if dv, err := valuer.Value(); err == nil {
					if dv == nil {
						return nil, nil
					}
					return appendFormatted(buf, dv), nil
				}
			}
			return appendFormatted(buf, v), nil
		}
	case oid == pgtype.ByteaOID:
		if s, ok := v.(string); ok {
			v = []byte(s)
		}
	}
	out, err := m.Encode(oid, format, v, buf)
	if err == nil {
		return out, nil
	}
	if s, ok := v.(string); ok && format == pgtype.BinaryFormatCode {
		// A string for a typed column is the value's text form (what engines
		// return for many types): parse it, then encode it in binary.
		if typ, ok := m.TypeForOID(oid); ok {
			if native, derr := typ.Codec.DecodeValue(m, oid, pgtype.TextFormatCode, []byte(s)); derr == nil {
				if out, err2 := m.Encode(oid, format, native, buf); err2 == nil {
					return out, nil
				}
			}
		}
	}
	return nil, err
}

// appendInterval appends an interval as Postgres prints it with
// IntervalStyle postgres: "1 year 2 mons -3 days +04:05:06.5". pgtype
// writes "14 mon 3 day ...", which drivers that count a year as 365 days
// (psycopg2) read differently.
func appendInterval(buf []byte, iv pgtype.Interval) []byte {
	zero, before := true, false
	field := func(n int64, unit string) {
		if n == 0 {
			return
		}
		if !zero {
			buf = append(buf, ' ')
		}
		if before && n > 0 {
			buf = append(buf, '+')
		}
		buf = strconv.AppendInt(buf, n, 10)
		buf = append(buf, ' ')
		buf = append(buf, unit...)
		if n != 1 {
			buf = append(buf, 's')
		}
		zero, before = false, n < 0
	}
	field(int64(iv.Months/12), "year")
	field(int64(iv.Months%12), "mon")
	field(int64(iv.Days), "day")
	if zero || iv.Microseconds != 0 {
		us := iv.Microseconds
		if !zero {
			buf = append(buf, ' ')
		}
		switch {
		case us < 0:
			buf = append(buf, '-')
			us = -us
		case before:
			buf = append(buf, '+')
		}
		secs := us / 1e6
		buf = fmt.Appendf(buf, "%02d:%02d:%02d", secs/3600, secs/60%60, secs%60)
		if frac := us % 1e6; frac != 0 {
			buf = append(buf, strings.TrimRight(fmt.Sprintf(".%06d", frac), "0")...)
		}
	}
	return buf
}

// appendOffset appends t's UTC offset as Postgres prints it: hours, and
// minutes and seconds only when they are not zero.
func appendOffset(buf []byte, t time.Time) []byte {
	_, off := t.Zone()
	sign := byte('+')
	if off < 0 {
		sign, off = '-', -off
	}
	buf = fmt.Appendf(append(buf, sign), "%02d", off/3600)
	if m, sec := off/60%60, off%60; m != 0 || sec != 0 {
		buf = fmt.Appendf(buf, ":%02d", m)
		if sec != 0 {
			buf = fmt.Appendf(buf, ":%02d", sec)
		}
	}
	return buf
}

func appendFormatted(buf []byte, v any) []byte {
	switch x := v.(type) {
	case string:
		return append(buf, x...)
	case []byte:
		return append(buf, x...)
	case fmt.Stringer:
		return append(buf, x.String()...)
	default:
		return fmt.Append(buf, v)
	}
}

// paramError wraps a DecodeParam failure with the parameter's position,
// the way Postgres words it.
func paramError(i int, err error) *pgconn.PgError {
	pe := toPgError(context.Background(), err)
	pe.Message = fmt.Sprintf("%s (bind parameter $%d)", pe.Message, i+1)
	return pe
}
