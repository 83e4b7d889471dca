package wire_test

import (
	"errors"
	"math/big"
	"reflect"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgcdc/pgcdc/wire"
)

func TestDecodeParam(t *testing.T) {
	m := pgtype.NewMap()
	tm := time.Date(2024, 1, 2, 3, 4, 5, 600000000, time.UTC)
	day := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	const uuid = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
	binary := func(oid uint32, v any) []byte {
		b, err := m.Encode(oid, pgtype.BinaryFormatCode, v, nil)
		if err != nil {
			t.Fatalf("encode %v as %d: %v", v, oid, err)
		}
		return b
	}
	for _, tc := range []struct {
		name   string
		oid    uint32
		format int16
		src    []byte
		want   any
	}{
		{"null", pgtype.Int8OID, 1, nil, nil},
		{"unspecified text", 0, 0, []byte("x"), "x"},
		{"text", pgtype.TextOID, 0, []byte("héllo"), "héllo"},
		{"text binary", pgtype.TextOID, 1, []byte("héllo"), "héllo"},
		{"varchar", pgtype.VarcharOID, 0, []byte("v"), "v"},
		{"empty text is not null", pgtype.TextOID, 0, []byte{}, ""},
		{"int2 text", pgtype.Int2OID, 0, []byte("-3"), int64(-3)},
		{"int4 binary", pgtype.Int4OID, 1, binary(pgtype.Int4OID, int32(70000)), int64(70000)},
		{"int8 text", pgtype.Int8OID, 0, []byte("9007199254740993"), int64(9007199254740993)},
		{"int8 binary", pgtype.Int8OID, 1, binary(pgtype.Int8OID, int64(-1)), int64(-1)},
		{"oid", pgtype.OIDOID, 0, []byte("16384"), int64(16384)},
		{"float4 binary", pgtype.Float4OID, 1, binary(pgtype.Float4OID, float32(1.5)), 1.5},
		{"float8 text", pgtype.Float8OID, 0, []byte("2.25"), 2.25},
		{"bool text", pgtype.BoolOID, 0, []byte("t"), true},
		{"bool binary", pgtype.BoolOID, 1, []byte{0}, false},
		{"numeric text", pgtype.NumericOID, 0, []byte("123.4500"), "123.4500"},
		{"numeric binary", pgtype.NumericOID, 1, binary(pgtype.NumericOID, pgtype.Numeric{Int: big.NewInt(-1), Exp: -3, Valid: true}), "-0.001"},
		{"numeric NaN", pgtype.NumericOID, 0, []byte("NaN"), "NaN"},
		{"timestamptz text", pgtype.TimestamptzOID, 0, []byte("2024-01-02 03:04:05.6+00"), tm},
		{"timestamptz ISO 8601", pgtype.TimestamptzOID, 0, []byte("2024-01-02T03:04:05.6Z"), tm},
		{"timestamptz without zone", pgtype.TimestamptzOID, 0, []byte("2024-01-02 03:04:05.6"), tm},
		{"timestamptz binary", pgtype.TimestamptzOID, 1, binary(pgtype.TimestamptzOID, tm), tm},
		{"timestamptz infinity", pgtype.TimestamptzOID, 0, []byte("infinity"), "infinity"},
		{"timestamp binary", pgtype.TimestampOID, 1, binary(pgtype.TimestampOID, tm), tm},
		{"date text", pgtype.DateOID, 0, []byte("2024-01-02"), day},
		{"date binary", pgtype.DateOID, 1, binary(pgtype.DateOID, day), day},
		{"bytea text", pgtype.ByteaOID, 0, []byte(`\x00ff`), []byte{0, 255}},
		{"bytea binary", pgtype.ByteaOID, 1, []byte{0, 255}, []byte{0, 255}},
		{"json", pgtype.JSONOID, 0, []byte(`{"a":1}`), `{"a":1}`},
		{"jsonb text", pgtype.JSONBOID, 0, []byte(`{"a":1}`), `{"a":1}`},
		{"jsonb binary", pgtype.JSONBOID, 1, append([]byte{1}, `[1]`...), `[1]`},
		{"uuid text", pgtype.UUIDOID, 0, []byte(uuid), uuid},
		{"uuid binary", pgtype.UUIDOID, 1, binary(pgtype.UUIDOID, uuidValue(t, uuid)), uuid},
		{"text[] text", pgtype.TextArrayOID, 0, []byte(`{a,"b c"}`), []string{"a", "b c"}},
		{"text[] binary", pgtype.TextArrayOID, 1, binary(pgtype.TextArrayOID, []string{"a", "b"}), []string{"a", "b"}},
		{"text[] with NULL", pgtype.TextArrayOID, 0, []byte(`{a,NULL}`), []any{"a", nil}},
		{"int4[] binary", pgtype.Int4ArrayOID, 1, binary(pgtype.Int4ArrayOID, []int32{1, 2}), []int64{1, 2}},
		{"float8[]", pgtype.Float8ArrayOID, 0, []byte(`{1.5}`), []float64{1.5}},
		{"bool[]", pgtype.BoolArrayOID, 0, []byte(`{t,f}`), []bool{true, false}},
		{"int8[] with NULL", pgtype.Int8ArrayOID, 0, []byte(`{1,NULL}`), []any{int64(1), nil}},
		{"unknown type text", 99999, 0, []byte("whatever"), "whatever"},
		{"unknown type binary", 99999, 1, []byte{1, 2}, []byte{1, 2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := wire.DecodeParam(m, tc.oid, tc.format, tc.src)
			if err != nil {
				t.Fatal(err)
			}
			if want, ok := tc.want.(time.Time); ok {
				if g, ok := got.(time.Time); !ok || !g.Equal(want) {
					t.Fatalf("got %#v, want %v", got, want)
				}
				return
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v (%T), want %#v (%T)", got, got, tc.want, tc.want)
			}
		})
	}
}

func TestDecodeParamErrors(t *testing.T) {
	m := pgtype.NewMap()
	for _, tc := range []struct {
		name   string
		oid    uint32
		format int16
		src    []byte
		code   string
	}{
		{"bad integer", pgtype.Int4OID, 0, []byte("four"), "22P02"},
		{"bad bool", pgtype.BoolOID, 0, []byte("maybe"), "22P02"},
		{"short binary int8", pgtype.Int8OID, 1, []byte{1, 2}, "22P03"},
		{"bad jsonb version", pgtype.JSONBOID, 1, []byte{2, '1'}, "22P03"},
		{"bad format code", pgtype.TextOID, 7, []byte("x"), "08P01"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := wire.DecodeParam(m, tc.oid, tc.format, tc.src)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != tc.code {
				t.Fatalf("got %v, want SQLSTATE %s", err, tc.code)
			}
		})
	}
}

func uuidValue(t *testing.T, s string) pgtype.UUID {
	var u pgtype.UUID
	if err := u.Scan(s); err != nil {
		t.Fatal(err)
	}
	return u
}
