package wire_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgcdc/pgcdc/wire"
)

// The fake session's COPY statements: "copy out <format>" sends copyRows,
// "copy in <format>" keeps what the client sends in copyTarget.

var (
	copyColumns = []wire.Column{{Name: "id", OID: pgtype.Int8OID}, {Name: "name", OID: pgtype.TextOID}, {Name: "ok", OID: pgtype.BoolOID}}
	copyRows    = [][]any{{int64(1), "plain", true}, {int64(2), "tab\tnew\nline\\ \"q\", x", false}, {int64(3), nil, nil}, {int64(4), "", true}}
)

var copyTarget struct {
	sync.Mutex
	rows  [][]any
	ended []string
}

func copyOptions(format string) wire.CopyOptions {
	o := wire.CopyOptions{Columns: copyColumns, Table: "t", Delimiter: '\t', Null: `\N`}
	switch format {
	case "csv":
		o.Format, o.Delimiter, o.Null, o.Quote, o.Escape = wire.CopyCSV, ',', "", '"', '"'
	case "csvheader":
		o.Format, o.Delimiter, o.Null, o.Quote, o.Escape, o.Header = wire.CopyCSV, ',', "", '"', '"', true
	case "binary":
		o.Format = wire.CopyBinary
	case "csvforce":
		o.Format, o.Delimiter, o.Null, o.Quote, o.Escape = wire.CopyCSV, ',', "", '"', '"'
		o.ForceNotNull, o.ForceNull = []bool{false, true, false}, []bool{false, false, true}
	case "csvsemi":
		o.Format, o.Delimiter, o.Null, o.Quote, o.Escape = wire.CopyCSV, ';', "NULL", '\'', '\\'
		o.ForceQuote = []bool{true, false, false}
	}
	return o
}

func (s *fakeSession) copyStatement(q string) (wire.Statement, error) {
	f := strings.Fields(q)
	if len(f) != 3 {
		return nil, fmt.Errorf("fake: copy out|in text|csv|csvheader|binary")
	}
	return &copyStatement{in: f[1] == "in", opts: copyOptions(f[2])}, nil
}

type copyStatement struct {
	in   bool
	opts wire.CopyOptions
}

func (st *copyStatement) ParamOIDs() []uint32    { return nil }
func (st *copyStatement) Columns() []wire.Column { return nil }
func (st *copyStatement) Execute(context.Context, []any, wire.Notifier) (wire.Result, error) {
	if st.in {
		return &copyIn{opts: st.opts}, nil
	}
	return &copyOut{opts: st.opts}, nil
}

type copyOut struct {
	opts wire.CopyOptions
	i    int
}

func (r *copyOut) CopyOut() wire.CopyOptions { return r.opts }
func (r *copyOut) Next(context.Context) ([]any, error) {
	if r.i == len(copyRows) {
		return nil, io.EOF
	}
	r.i++
	return copyRows[r.i-1], nil
}
func (r *copyOut) Tag() string  { return fmt.Sprintf("COPY %d", r.i) }
func (r *copyOut) Close() error { return nil }

type copyIn struct {
	opts wire.CopyOptions
	rows [][]any
}

func (r *copyIn) CopyIn() wire.CopyOptions { return r.opts }
func (r *copyIn) Put(_ context.Context, row []any) error {
	r.rows = append(r.rows, row)
	return nil
}
func (r *copyIn) End(_ context.Context, err error) error {
	copyTarget.Lock()
	defer copyTarget.Unlock()
	if err != nil {
		if len(copyTarget.ended) <= 1000 {
			copyTarget.ended = append(copyTarget.ended, err.Error())
		}
		return err
	}
	if len(copyTarget.ended) > 1000 {
		return nil // the fuzzer's copies; nobody reads them
	}
	copyTarget.rows = append(copyTarget.rows, r.rows...)
	copyTarget.ended = append(copyTarget.ended, "ok")
	return nil
}
func (r *copyIn) Next(context.Context) ([]any, error) { return nil, io.EOF }
func (r *copyIn) Tag() string                         { return fmt.Sprintf("COPY %d", len(r.rows)) }
func (r *copyIn) Close() error                        { return nil }

func takeCopied() ([][]any, []string) {
	copyTarget.Lock()
	defer copyTarget.Unlock()
	rows, ended := copyTarget.rows, copyTarget.ended
	copyTarget.rows, copyTarget.ended = nil, nil
	return rows, ended
}

// TestCopyFormats sends the same rows out in every format, reads them
// back in, and checks the bytes against what Postgres writes for them.
func TestCopyFormats(t *testing.T) {
	ts := startServer(t, wire.Config{})
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, ts.connString("", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	want := map[string]string{
		"text":      "1\tplain\tt\n2\ttab\\tnew\\nline\\\\ \"q\", x\tf\n3\t\\N\t\\N\n4\t\tt\n",
		"csv":       "1,plain,t\n2,\"tab\tnew\nline\\ \"\"q\"\", x\",f\n3,,\n4,\"\",t\n",
		"csvheader": "id,name,ok\n1,plain,t\n2,\"tab\tnew\nline\\ \"\"q\"\", x\",f\n3,,\n4,\"\",t\n",
	}
	for _, format := range []string{"text", "csv", "csvheader", "binary"} {
		var buf bytes.Buffer
		tag, err := conn.PgConn().CopyTo(ctx, &buf, "copy out "+format)
		if err != nil || tag.String() != "COPY 4" {
			t.Fatalf("copy out %s: %v %s", format, err, tag)
		}
		if w, ok := want[format]; ok && buf.String() != w {
			t.Errorf("copy out %s:\ngot  %q\nwant %q", format, buf.String(), w)
		}
		// What went out comes back in as the same rows, split into
		// CopyData messages of 5 bytes.
		tag, err = conn.PgConn().CopyFrom(ctx, &chunked{buf.Bytes(), 5}, "copy in "+format)
		if err != nil || tag.String() != "COPY 4" {
			t.Fatalf("copy in %s: %v %s", format, err, tag)
		}
		rows, ended := takeCopied()
		if fmt.Sprint(rows) != fmt.Sprint(copyRows) || fmt.Sprint(ended) != "[ok]" {
			t.Errorf("copy in %s: %v %v, want %v", format, rows, ended, copyRows)
		}
	}
	var one int
	if err := conn.QueryRow(ctx, "select 1").Scan(&one); err != nil {
		t.Fatal(err)
	}
}

type chunked struct {
	b    []byte
	size int
}

func (c *chunked) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.size)], c.b)
	c.b = c.b[n:]
	return n, nil
}

// TestCopyProtocol checks the message flow against what Postgres sends:
// CopyFail, bad data, unexpected messages, Flush and Sync in the middle,
// COPY in the extended protocol, and data after a failed COPY.
func TestCopyProtocol(t *testing.T) {
	ts := startServer(t, wire.Config{})
	c := dialRaw(t, ts)
	c.startup()
	takeCopied()
	expect := func(what string, got []string, want ...string) {
		t.Helper()
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Errorf("%s:\ngot  %q\nwant %q", what, got, want)
		}
	}

	c.send(&pgproto3.Query{String: "copy in text"})
	expect("CopyInResponse", []string{c.next()}, "CopyInResponse")
	c.send(&pgproto3.CopyData{Data: []byte("1\ta")}, &pgproto3.Flush{}, &pgproto3.Sync{}, &pgproto3.CopyData{Data: []byte("\tt\n")}, &pgproto3.CopyFail{Message: "client gave up"})
	expect("CopyFail", c.until(1), "ErrorResponse ERROR 57014 COPY from stdin failed: client gave up", "ReadyForQuery I")
	if rows, ended := takeCopied(); len(rows) != 0 || len(ended) != 1 || ended[0] == "ok" {
		t.Errorf("after CopyFail: %v %v", rows, ended)
	}

	// Bad data: the error comes at once; what the client still sends is
	// ignored.
	c.send(&pgproto3.Query{String: "copy in text"})
	c.next()
	c.send(&pgproto3.CopyData{Data: []byte("x\ta\tt\n")})
	expect("bad data", c.until(1), "ErrorResponse ERROR 22P02 invalid input syntax for type int8: \"x\"", "ReadyForQuery I")
	c.send(&pgproto3.CopyData{Data: []byte("2\tb\tf\n")}, &pgproto3.CopyDone{}, &pgproto3.Query{String: "select 1"})
	expect("after bad data", c.until(1), "RowDescription ?column?:23:0", "DataRow 1", "CommandComplete SELECT 1", "ReadyForQuery I")
	takeCopied()

	// A message that has no place in COPY ends it with an error.
	c.send(&pgproto3.Query{String: "copy in text"})
	c.next()
	c.send(&pgproto3.Query{String: "select 1"})
	got := c.until(1)
	if len(got) != 2 || !strings.HasPrefix(got[0], "ErrorResponse ERROR 08P01") {
		t.Errorf("unexpected message during COPY: %q", got)
	}

	// Wrong column counts (22P04), with the line in the context.
	for _, data := range []string{"1\ta\n", "1\ta\tt\textra\n"} {
		c.send(&pgproto3.Query{String: "copy in text"})
		c.next()
		c.send(&pgproto3.CopyData{Data: []byte(data)}, &pgproto3.CopyDone{})
		got := c.until(1)
		if len(got) != 2 || !strings.HasPrefix(got[0], "ErrorResponse ERROR 22P04") {
			t.Errorf("%q: %q", data, got)
		}
	}
	takeCopied()

	// The extended protocol: COPY out answers Execute with the COPY
	// messages whatever the row limit; COPY in waits for the data.
	c.send(&pgproto3.Parse{Query: "copy out csv"}, &pgproto3.Bind{}, &pgproto3.Describe{ObjectType: 'P'}, &pgproto3.Execute{MaxRows: 1}, &pgproto3.Sync{})
	expect("extended COPY out", c.until(1), "ParseComplete", "BindComplete", "NoData", "CopyOutResponse",
		"CopyData", "CopyData", "CopyData", "CopyData", "CopyDone", "CommandComplete COPY 4", "ReadyForQuery I")
	c.send(&pgproto3.Parse{Query: "copy in csv"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Flush{})
	expect("extended COPY in", []string{c.next(), c.next(), c.next()}, "ParseComplete", "BindComplete", "CopyInResponse")
	c.send(&pgproto3.CopyData{Data: []byte("7,seven,t\n")}, &pgproto3.CopyDone{}, &pgproto3.Sync{})
	expect("extended COPY in, done", c.until(1), "CommandComplete COPY 1", "ReadyForQuery I")
	if rows, _ := takeCopied(); fmt.Sprint(rows) != "[[7 seven true]]" {
		t.Errorf("extended COPY in: %v", rows)
	}
}

// next reads one message.
func (c *rawClient) next() string {
	c.t.Helper()
	msg, err := c.fe.Receive()
	if err != nil {
		c.t.Fatalf("receive: %v", err)
	}
	return describe(msg)
}

// TestCopyCSVOptions: FORCE_NOT_NULL, FORCE_NULL, FORCE_QUOTE, and other
// delimiter, NULL, quote and escape characters, as Postgres reads and
// writes them.
func TestCopyCSVOptions(t *testing.T) {
	ts := startServer(t, wire.Config{})
	ctx := testContext(t)
	conn, err := pgx.Connect(ctx, ts.connString("", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	takeCopied()
	if _, err := conn.PgConn().CopyFrom(ctx, strings.NewReader("1,,\"\"\n2,\"\",\n"), "copy in csvforce"); err != nil {
		t.Fatal(err)
	}
	if rows, _ := takeCopied(); fmt.Sprintf("%#v", rows) != `[][]interface {}{[]interface {}{1, "", interface {}(nil)}, []interface {}{2, "", interface {}(nil)}}` {
		t.Errorf("FORCE_NOT_NULL, FORCE_NULL: %#v", rows)
	}
	var buf bytes.Buffer
	if _, err := conn.PgConn().CopyTo(ctx, &buf, "copy out csvsemi"); err != nil {
		t.Fatal(err)
	}
	// What Postgres writes for COPY ... (FORMAT csv, DELIMITER ';',
	// NULL 'NULL', QUOTE '''', ESCAPE '\', FORCE_QUOTE (id)).
	want := "'1';plain;t\n'2';'tab\tnew\nline\\\\ \"q\", x';f\n'3';NULL;NULL\n'4';;t\n"
	if buf.String() != want {
		t.Errorf("copy out csvsemi:\ngot  %q\nwant %q", buf.String(), want)
	}
	if _, err := conn.PgConn().CopyFrom(ctx, bytes.NewReader(buf.Bytes()), "copy in csvsemi"); err != nil {
		t.Fatal(err)
	}
	if rows, _ := takeCopied(); fmt.Sprint(rows) != fmt.Sprint(copyRows) {
		t.Errorf("copy in csvsemi: %v", rows)
	}
}

// TestCopyTerminate: a client that ends the session in the middle of COPY
// FROM STDIN gets the copy undone and the session closed, not a hang.
func TestCopyTerminate(t *testing.T) {
	ts := startServer(t, wire.Config{})
	c := dialRaw(t, ts)
	c.startup()
	takeCopied()
	c.send(&pgproto3.Query{String: "copy in text"})
	c.next()
	c.send(&pgproto3.CopyData{Data: []byte("1\ta\tt\n")}, &pgproto3.Terminate{})
	got := c.untilEOF()
	if len(got) == 0 || !strings.HasPrefix(got[0], "ErrorResponse ERROR 08P01") {
		t.Errorf("Terminate during COPY: %q", got)
	}
	if rows, ended := takeCopied(); len(rows) != 0 || len(ended) != 1 || ended[0] == "ok" {
		t.Errorf("after Terminate: %v %v", rows, ended)
	}
}

// TestCopyHangUp: a client that hangs up in the middle of COPY FROM STDIN
// gets the copy undone and its session released (startServer's cleanup
// waits for every session to close).
func TestCopyHangUp(t *testing.T) {
	ts := startServer(t, wire.Config{})
	c := dialRaw(t, ts)
	c.startup()
	takeCopied()
	c.send(&pgproto3.Query{String: "copy in csv"})
	c.next()
	c.send(&pgproto3.CopyData{Data: []byte("1,a,t\n2,b")})
	c.conn.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, ended := takeCopied(); len(ended) == 1 {
			if ended[0] == "ok" {
				t.Fatal("a COPY cut short by a hang-up was kept")
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the COPY did not end after the client hung up")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
