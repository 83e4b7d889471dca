package duckdb

import (
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	duckdb "github.com/duckdb/duckdb-go/v2"
	"github.com/jackc/pgx/v5/pgtype"
)

// pgType maps a DuckDB result type to the Postgres type clients are told.
func pgType(info duckdb.TypeInfo) (uint32, int16) {
	return pgTypeOf(info.InternalType())
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

// pgValue converts a scanned DuckDB value to the Go value pgtype encodes
// for the Postgres type pgTypeOf chose.
func pgValue(t duckdb.Type, v any) any {
	if v == nil {
		return nil
	}
	switch x := v.(type) {
	case int8:
		return int16(x)
	case uint8:
		return int16(x)
	case uint16:
		return int32(x)
	case uint32:
		return int64(x)
	case uint64:
		return pgtype.Numeric{Int: new(big.Int).SetUint64(x), Valid: true}
	case *big.Int:
		return pgtype.Numeric{Int: x, Valid: true}
	case duckdb.Decimal:
		return pgtype.Numeric{Int: x.Value, Exp: -int32(x.Scale), Valid: true}
	case duckdb.Interval:
		return pgtype.Interval{Months: x.Months, Days: x.Days, Microseconds: x.Micros, Valid: true}
	case time.Time:
		switch t {
		case duckdb.TYPE_TIME:
			return pgtype.Time{Microseconds: int64(x.Hour())*3600e6 + int64(x.Minute())*60e6 + int64(x.Second())*1e6 + int64(x.Nanosecond())/1e3, Valid: true}
		case duckdb.TYPE_TIME_TZ:
			return x.Format("15:04:05.999999-07:00")
		}
		return x
	case []byte:
		if t == duckdb.TYPE_UUID && len(x) == 16 {
			var u [16]byte
			copy(u[:], x)
			return pgtype.UUID{Bytes: u, Valid: true}
		}
		if t == duckdb.TYPE_BLOB {
			return x
		}
		return string(x)
	case duckdb.UUID:
		return pgtype.UUID{Bytes: x, Valid: true}
	case string, int16, int32, int64, float32, float64, bool:
		return x
	}
	// Nested and other types go out as text; JSON is the closest widely
	// readable form for lists, structs and maps.
	if b, err := json.Marshal(v); err == nil {
		return string(b)
	}
	return fmt.Sprint(v)
}
