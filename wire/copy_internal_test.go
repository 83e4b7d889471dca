package wire

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"
)

// FuzzCopyDecoder feeds arbitrary COPY data to the decoders, whole and
// split in two CopyData messages: nothing panics, every error is a
// *pgconn.PgError, and where the data splits does not change the rows.
func FuzzCopyDecoder(f *testing.F) {
	f.Add([]byte("1\tx\tt\n2\t\\N\tf\n\\.\n"), uint8(0), uint16(3))
	f.Add([]byte("id,name,ok\n1,\"a,\nb\"\"\",t\n2,,\n"), uint8(1), uint16(9))
	f.Add(append(append([]byte{}, copySignature...), 0, 0, 0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 8, 0, 0, 0, 0, 0, 0, 0, 1, 255, 255, 255, 255, 0, 0, 0, 1, 1, 255, 255), uint8(2), uint16(20))
	cols := []Column{{Name: "id", OID: pgtype.Int8OID}, {Name: "name", OID: pgtype.TextOID}, {Name: "ok", OID: pgtype.BoolOID}}
	decode := func(t *testing.T, format uint8, parts ...[]byte) (string, error) {
		opts := CopyOptions{Columns: cols, Table: "t", Delimiter: '\t', Null: `\N`}
		switch format % 3 {
		case 1:
			opts.Format, opts.Delimiter, opts.Null, opts.Quote, opts.Escape, opts.Header = CopyCSV, ',', "", '"', '"', true
		case 2:
			opts.Format = CopyBinary
		}
		d := &copyDecoder{m: pgtype.NewMap(), opts: opts}
		var rows []string
		put := func(row []any) error {
			if len(row) != len(cols) {
				t.Fatalf("a row of %d values for %d columns", len(row), len(cols))
			}
			rows = append(rows, fmt.Sprintf("%#v", row))
			return nil
		}
		for _, p := range parts {
			if err := d.feed(p, put); err != nil {
				return fmt.Sprint(rows), err
			}
		}
		return fmt.Sprint(rows), d.finish(put)
	}
	f.Fuzz(func(t *testing.T, data []byte, format uint8, split uint16) {
		whole, err := decode(t, format, data)
		if err != nil {
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || len(pe.Code) != 5 {
				t.Fatalf("error %v (%T) has no SQLSTATE", err, err)
			}
		}
		cut := int(split) % (len(data) + 1)
		parts, err2 := decode(t, format, data[:cut], data[cut:])
		if (err == nil) != (err2 == nil) || err == nil && parts != whole {
			t.Fatalf("split at %d: %s, %v; whole: %s, %v", cut, parts, err2, whole, err)
		}
	})
}
