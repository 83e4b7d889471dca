package duckdb

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"sort"
	"strconv"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// resultType is one result column (or list element) in Postgres terms:
// the type a Postgres server would describe, and how DuckDB's scanned value
// becomes the Go value the wire layer encodes for that type.
type resultType struct {
	t      duckdb.Type
	oid    uint32
	size   int16
	typmod int32
	json   bool        // DuckDB's JSON (a VARCHAR alias): sent as jsonb
	elem   *resultType // LIST and ARRAY: the element type
}

// arrayOIDs maps element type OIDs to their array types.
var arrayOIDs = map[uint32]uint32{
	pgtype.BoolOID:        pgtype.BoolArrayOID,
	pgtype.ByteaOID:       pgtype.ByteaArrayOID,
	pgtype.Int2OID:        pgtype.Int2ArrayOID,
	pgtype.Int4OID:        pgtype.Int4ArrayOID,
	pgtype.Int8OID:        pgtype.Int8ArrayOID,
	pgtype.TextOID:        pgtype.TextArrayOID,
	pgtype.Float4OID:      pgtype.Float4ArrayOID,
	pgtype.Float8OID:      pgtype.Float8ArrayOID,
	pgtype.NumericOID:     pgtype.NumericArrayOID,
	pgtype.DateOID:        pgtype.DateArrayOID,
	pgtype.TimeOID:        pgtype.TimeArrayOID,
	pgtype.TimestampOID:   pgtype.TimestampArrayOID,
	pgtype.TimestamptzOID: pgtype.TimestamptzArrayOID,
	pgtype.IntervalOID:    pgtype.IntervalArrayOID,
	pgtype.UUIDOID:        pgtype.UUIDArrayOID,
	pgtype.JSONBOID:       pgtype.JSONBArrayOID,
}

// newResultType maps a DuckDB result type to Postgres's. JSON is jsonb
// (the replica stores json and jsonb columns as JSON), LIST and ARRAY are
// Postgres arrays of their element type (nested lists are one
// multidimensional array, as Postgres has no arrays of arrays), DECIMAL(p,s)
// is numeric(p,s) with its type modifier, and what has no Postgres
// counterpart (STRUCT, MAP, UNION, ENUM, ...) goes out as text.
func newResultType(info duckdb.TypeInfo) *resultType {
	rt := &resultType{t: info.InternalType(), typmod: -1}
	switch d := info.Details().(type) {
	case *duckdb.ListDetails:
		rt.elem = newResultType(d.Child)
	case *duckdb.ArrayDetails:
		rt.elem = newResultType(d.Child)
	case *duckdb.DecimalDetails:
		rt.typmod = int32(d.Width)<<16 | int32(d.Scale) + 4
	}
	if rt.elem != nil {
		inner := rt.elem
		for inner.elem != nil {
			inner = inner.elem
		}
		if arr, ok := arrayOIDs[inner.oid]; ok {
			rt.oid, rt.size, rt.typmod = arr, -1, inner.typmod
			return rt
		}
		rt.elem = nil // text, in the JSON-like form DuckDB prints
	}
	if info.Alias() == "JSON" {
		rt.json = true
		rt.oid, rt.size = pgtype.JSONBOID, -1
		return rt
	}
	rt.oid, rt.size = pgTypeOf(rt.t)
	return rt
}

func pgTypeOf(t duckdb.Type) (uint32, int16) {
	switch t {
	case duckdb.TYPE_BOOLEAN:
		return pgtype.BoolOID, 1
	case duckdb.TYPE_TINYINT, duckdb.TYPE_SMALLINT, duckdb.TYPE_UTINYINT:
		return pgtype.Int2OID, 2
	case duckdb.TYPE_INTEGER, duckdb.TYPE_USMALLINT:
		return pgtype.Int4OID, 4
	case duckdb.TYPE_BIGINT, duckdb.TYPE_UINTEGER:
		return pgtype.Int8OID, 8
	case duckdb.TYPE_UBIGINT, duckdb.TYPE_HUGEINT, duckdb.TYPE_UHUGEINT, duckdb.TYPE_DECIMAL, duckdb.TYPE_BIGNUM:
		return pgtype.NumericOID, -1
	case duckdb.TYPE_FLOAT:
		return pgtype.Float4OID, 4
	case duckdb.TYPE_DOUBLE:
		return pgtype.Float8OID, 8
	case duckdb.TYPE_DATE:
		return pgtype.DateOID, 4
	case duckdb.TYPE_TIME:
		return pgtype.TimeOID, 8
	case duckdb.TYPE_TIMESTAMP, duckdb.TYPE_TIMESTAMP_S, duckdb.TYPE_TIMESTAMP_MS, duckdb.TYPE_TIMESTAMP_NS:
		return pgtype.TimestampOID, 8
	case duckdb.TYPE_TIMESTAMP_TZ:
		return pgtype.TimestamptzOID, 8
	case duckdb.TYPE_INTERVAL:
		return pgtype.IntervalOID, 16
	case duckdb.TYPE_BLOB:
		return pgtype.ByteaOID, -1
	case duckdb.TYPE_UUID:
		return pgtype.UUIDOID, 16
	}
	return pgtype.TextOID, -1
}

// errRaggedArray is Postgres's refusal of an array whose sub-arrays differ
// in length, which a DuckDB list of lists may be.
var errRaggedArray = &pgconn.PgError{Severity: "ERROR", Code: "2202E",
	Message: "multidimensional arrays must have array expressions with matching dimensions",
	Detail:  "A DuckDB list of lists of different lengths has no Postgres array form."}

// value converts a scanned DuckDB value to the Go value pgtype encodes for
// the column's Postgres type. timestamptz values are moved into loc, the
// session's TimeZone, so that their text shows its offset.
func (rt *resultType) value(v any, loc *time.Location) (any, error) {
	if v == nil {
		return nil, nil
	}
	if rt.elem != nil {
		if _, ok := v.([]any); ok {
			return rt.array(v, loc)
		}
	}
	if rt.json {
		return jsonbText(v), nil
	}
	switch x := v.(type) {
	case int8:
		return int16(x), nil
	case uint8:
		return int16(x), nil
	case uint16:
		return int32(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		return pgtype.Numeric{Int: new(big.Int).SetUint64(x), Valid: true}, nil
	case *big.Int:
		return pgtype.Numeric{Int: x, Valid: true}, nil
	case duckdb.Decimal:
		return pgtype.Numeric{Int: x.Value, Exp: -int32(x.Scale), Valid: true}, nil
	case duckdb.Interval:
		return pgtype.Interval{Months: x.Months, Days: x.Days, Microseconds: x.Micros, Valid: true}, nil
	case time.Time:
		switch rt.t {
		case duckdb.TYPE_TIME:
			return pgtype.Time{Microseconds: int64(x.Hour())*3600e6 + int64(x.Minute())*60e6 + int64(x.Second())*1e6 + int64(x.Nanosecond())/1e3, Valid: true}, nil
		case duckdb.TYPE_TIME_TZ:
			return x.Format("15:04:05.999999-07:00"), nil
		case duckdb.TYPE_TIMESTAMP_TZ:
			if loc != nil {
				return x.In(loc), nil
			}
		}
		return x, nil
	case []byte:
		if rt.t == duckdb.TYPE_UUID && len(x) == 16 {
			var u [16]byte
			copy(u[:], x)
			return pgtype.UUID{Bytes: u, Valid: true}, nil
		}
		if rt.t == duckdb.TYPE_BLOB {
			return x, nil
		}
		return string(x), nil
	case duckdb.UUID:
		return pgtype.UUID{Bytes: x, Valid: true}, nil
	case string, int16, int32, int64, float32, float64, bool:
		return x, nil
	}
	// Structs, maps and unions go out as text; JSON is the closest widely
	// readable form.
	if b, err := json.Marshal(v); err == nil {
		return string(b), nil
	}
	return fmt.Sprint(v), nil
}

// array turns a (possibly nested) DuckDB list into a Postgres array:
// elements flattened in row-major order with one dimension per level.
func (rt *resultType) array(v any, loc *time.Location) (any, error) {
	var dims []pgtype.ArrayDimension
	var elems []any
	var walk func(v any, level int, et *resultType) error
	walk = func(v any, level int, et *resultType) error {
		if et.elem == nil {
			ev, err := et.value(v, loc)
			elems = append(elems, ev)
			return err
		}
		list, ok := v.([]any)
		if !ok {
			return errRaggedArray // NULL where a sub-array belongs
		}
		if level == len(dims) {
			dims = append(dims, pgtype.ArrayDimension{Length: int32(len(list)), LowerBound: 1})
		} else if dims[level].Length != int32(len(list)) {
			return errRaggedArray
		}
		for _, e := range list {
			if err := walk(e, level+1, et.elem); err != nil {
				return err
			}
		}
		return nil
	}
	if err := walk(v, 0, rt); err != nil {
		return nil, err
	}
	if len(elems) == 0 {
		// Postgres's empty array has no dimensions; pgtype takes nil
		// dimensions for NULL, an empty slice for '{}'.
		dims = []pgtype.ArrayDimension{}
	}
	return pgtype.Array[any]{Elements: elems, Dims: dims, Valid: true}, nil
}

// jsonbText renders a JSON value (as duckdb-go unmarshals it) the way
// Postgres prints jsonb: keys ordered by length, then bytes, and ", " and
// ": " between items.
func jsonbText(v any) string {
	var b bytes.Buffer
	writeJSONB(&b, v)
	return b.String()
}

func writeJSONB(b *bytes.Buffer, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool {
			if len(keys[i]) != len(keys[j]) {
				return len(keys[i]) < len(keys[j])
			}
			return keys[i] < keys[j]
		})
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSONB(b, k)
			b.WriteString(": ")
			writeJSONB(b, x[k])
		}
		b.WriteByte('}')
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteString(", ")
			}
			writeJSONB(b, e)
		}
		b.WriteByte(']')
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e21 {
			b.WriteString(strconv.FormatFloat(x, 'f', -1, 64))
		} else {
			b.WriteString(strconv.FormatFloat(x, 'g', -1, 64))
		}
	default:
		// Postgres does not escape <, > and & as encoding/json does.
		enc := json.NewEncoder(b)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(x); err != nil {
			enc.Encode(fmt.Sprint(x))
		}
		b.Truncate(b.Len() - 1) // Encode's newline
	}
}
