package replicator

import (
	"context"
	"strings"
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

func TestDecodeCopyLine(t *testing.T) {
	cases := []struct {
		line string
		want []string // "<NULL>" for NULL
	}{
		{"1\tabc\t\\N", []string{"1", "abc", "<NULL>"}},
		{"a\\tb\t\\\\N\t", []string{"a\tb", "\\N", ""}},
		{"line\\nbreak\tcr\\r\tx\\x41\\101", []string{"line\nbreak", "cr\r", "xAA"}},
		{"\\b\\f\\v\tq'\"\tü", []string{"\b\f\v", "q'\"", "ü"}},
	}
	for _, c := range cases {
		r, err := decodeCopyLine([]byte(c.line), len(c.want))
		if err != nil {
			t.Fatalf("%q: %v", c.line, err)
		}
		for i, v := range r.Values {
			got := "<NULL>"
			if v != nil {
				got = string(v)
			}
			if got != c.want[i] {
				t.Errorf("%q field %d = %q, want %q", c.line, i, got, c.want[i])
			}
		}
	}
	if _, err := decodeCopyLine([]byte("a\tb"), 3); err == nil {
		t.Error("a row with too few fields must be an error")
	}
}

func TestCopyReaderSplitsAcrossWrites(t *testing.T) {
	var got []replica.Row
	w := &copyReader{ncols: 2, flush: func(rows []replica.Row) error {
		for _, r := range rows {
			got = append(got, replica.Row{Values: append([][]byte(nil), r.Values...)})
		}
		return nil
	}}
	data := "1\ta\n2\tb\\nc\n3\t\\N\n"
	for i := 0; i < len(data); i += 3 {
		end := i + 3
		if end > len(data) {
			end = len(data)
		}
		if _, err := w.Write([]byte(data[i:end])); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.finish(); err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, r := range got {
		v := "NULL"
		if r.Values[1] != nil {
			v = string(r.Values[1])
		}
		parts = append(parts, string(r.Values[0])+"="+v)
	}
	if s := strings.Join(parts, ","); s != "1=a,2=b\nc,3=NULL" {
		t.Fatalf("rows = %q", s)
	}
}

func TestParsePublish(t *testing.T) {
	list, p, err := parsePublish(" Insert,update ,delete")
	if err != nil || list != "insert, update, delete" || !p.Insert || !p.Update || !p.Delete || p.Truncate {
		t.Fatalf("parsePublish = %q %+v %v", list, p, err)
	}
	if _, _, err := parsePublish("insert, merge"); err == nil {
		t.Fatal("unknown operation accepted")
	}
}

func TestLSN(t *testing.T) {
	lsn, err := parseLSN("16/B374D848")
	if err != nil || FormatLSN(lsn) != "16/B374D848" || lsn != 0x16B374D848 {
		t.Fatalf("parseLSN = %x %v", lsn, err)
	}
}

// An unknown pgoutput message stops the stream with a clear error instead
// of being skipped.
func TestUnknownMessageIsAnError(t *testing.T) {
	rd := &reader{}
	_, err := rd.logical(context.Background(), 0x100, []byte{'Z', 0, 0, 0, 0})
	if err == nil || !strings.Contains(err.Error(), "cannot decode pgoutput message") {
		t.Fatalf("unknown message: %v", err)
	}
	if _, err := rd.copyData(context.Background(), []byte{'q'}); err == nil || !strings.Contains(err.Error(), "unknown replication message") {
		t.Fatalf("unknown CopyData message: %v", err)
	}
}
