package wire_test

import (
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcdc/pgcdc/wire"
)

// rawClient speaks the protocol message by message, for what real clients
// never send.
type rawClient struct {
	t    *testing.T
	conn net.Conn
	fe   *pgproto3.Frontend
}

func dialRaw(t *testing.T, ts *testServer) *rawClient {
	t.Helper()
	conn, err := net.DialTimeout("tcp", ts.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	t.Cleanup(func() { conn.Close() })
	return &rawClient{t: t, conn: conn, fe: pgproto3.NewFrontend(conn, conn)}
}

func (c *rawClient) send(msgs ...pgproto3.FrontendMessage) {
	c.t.Helper()
	for _, m := range msgs {
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

func startupMessage(version uint32, params ...string) *pgproto3.StartupMessage {
	m := &pgproto3.StartupMessage{ProtocolVersion: version, Parameters: map[string]string{"user": "alice", "database": "appdb"}}
	for i := 0; i+1 < len(params); i += 2 {
		m.Parameters[params[i]] = params[i+1]
	}
	return m
}

// startup connects with trust authentication and returns what the server
// said up to ReadyForQuery.
func (c *rawClient) startup(params ...string) []string {
	c.t.Helper()
	c.send(startupMessage(pgproto3.ProtocolVersion30, params...))
	return c.until(1)
}

// until reads messages until the n-th ReadyForQuery.
func (c *rawClient) until(n int) []string {
	c.t.Helper()
	var got []string
	for n > 0 {
		msg, err := c.fe.Receive()
		if err != nil {
			c.t.Fatalf("receive after %q: %v", got, err)
		}
		got = append(got, describe(msg))
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			n--
		}
	}
	return got
}

// untilEOF reads messages until the server closes the connection.
func (c *rawClient) untilEOF() []string {
	c.t.Helper()
	var got []string
	for {
		msg, err := c.fe.Receive()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return got
			}
			c.t.Fatalf("receive after %q: %v", got, err)
		}
		got = append(got, describe(msg))
	}
}

// describe renders a backend message as one line of a protocol script.
func describe(msg pgproto3.BackendMessage) string {
	switch m := msg.(type) {
	case *pgproto3.RowDescription:
		var f []string
		for _, fd := range m.Fields {
			f = append(f, fmt.Sprintf("%s:%d:%d", fd.Name, fd.DataTypeOID, fd.Format))
		}
		return "RowDescription " + strings.Join(f, ",")
	case *pgproto3.DataRow:
		var v []string
		for _, b := range m.Values {
			switch {
			case b == nil:
				v = append(v, "NULL")
			case utf8.Valid(b) && !slices.ContainsFunc(b, func(c byte) bool { return c < 0x20 }):
				v = append(v, string(b))
			default:
				v = append(v, "0x"+hex.EncodeToString(b))
			}
		}
		return "DataRow " + strings.Join(v, "|")
	case *pgproto3.CommandComplete:
		return "CommandComplete " + string(m.CommandTag)
	case *pgproto3.ErrorResponse:
		return fmt.Sprintf("ErrorResponse %s %s %s", m.Severity, m.Code, m.Message)
	case *pgproto3.NoticeResponse:
		return fmt.Sprintf("NoticeResponse %s %s", m.Severity, m.Message)
	case *pgproto3.ReadyForQuery:
		return "ReadyForQuery " + string(m.TxStatus)
	case *pgproto3.ParameterDescription:
		return fmt.Sprintf("ParameterDescription %v", m.ParameterOIDs)
	case *pgproto3.NegotiateProtocolVersion:
		return fmt.Sprintf("NegotiateProtocolVersion %d %v", m.NewestMinorProtocol, m.UnrecognizedOptions)
	case *pgproto3.ParameterStatus:
		return "ParameterStatus " + m.Name
	}
	return strings.TrimPrefix(fmt.Sprintf("%T", msg), "*pgproto3.")
}

func TestProtocolScripts(t *testing.T) {
	ts := startServer(t, wire.Config{})
	type P = pgproto3.Parse
	type B = pgproto3.Bind
	type E = pgproto3.Execute
	type D = pgproto3.Describe
	type C = pgproto3.Close
	type Q = pgproto3.Query
	sync := &pgproto3.Sync{}
	for _, tc := range []struct {
		name string
		send []pgproto3.FrontendMessage
		want []string
	}{{
		name: "simple query, several statements",
		send: []pgproto3.FrontendMessage{&Q{String: "select 1; series 2; insert"}},
		want: []string{
			"RowDescription ?column?:23:0", "DataRow 1", "CommandComplete SELECT 1",
			"RowDescription n:20:0", "DataRow 1", "DataRow 2", "CommandComplete SELECT 2",
			"CommandComplete INSERT 0 1", "ReadyForQuery I",
		},
	}, {
		name: "simple query stops at the first error",
		send: []pgproto3.FrontendMessage{&Q{String: "select 1; error 22012; select 2"}},
		want: []string{
			"RowDescription ?column?:23:0", "DataRow 1", "CommandComplete SELECT 1",
			"ErrorResponse ERROR 22012 fake error 22012", "ReadyForQuery I",
		},
	}, {
		name: "empty query",
		send: []pgproto3.FrontendMessage{&Q{String: " ; "}},
		want: []string{"EmptyQueryResponse", "ReadyForQuery I"},
	}, {
		name: "text encoding of every type",
		send: []pgproto3.FrontendMessage{&Q{String: "types"}, &Q{String: "record"}},
		want: []string{
			"RowDescription i8:20:0,i4:23:0,i2:21:0,f8:701:0,f4:700:0,b:16:0,ts:1184:0,t:25:0,by:17:0,n:1700:0,ns:1700:0,d:1082:0,j:3802:0,u:2950:0,arr:1009:0,nul:25:0,i8s:20:0,empty:25:0",
			`DataRow 9007199254740993|-7|3|3.25|1.5|t|2024-05-06 07:08:09.123456+00|héllo|\x000102ff|12345|3.14159|2024-05-06|{"a": 1}|a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11|{x,"y z"}|NULL|42|`,
			"CommandComplete SELECT 1", "ReadyForQuery I",
			"RowDescription rec:2249:0,unk:99999:0,fields:2249:0", `DataRow (1,"x y",)|5|(1,"a b",,t)`, "CommandComplete SELECT 1", "ReadyForQuery I",
		},
	}, {
		name: "transaction status",
		send: []pgproto3.FrontendMessage{&Q{String: "begin"}, &Q{String: "bogus"}, &Q{String: "rollback"}},
		want: []string{
			"CommandComplete BEGIN", "ReadyForQuery T",
			`ErrorResponse ERROR 42601 syntax error at or near "bogus"`, "ReadyForQuery E",
			"CommandComplete ROLLBACK", "ReadyForQuery I",
		},
	}, {
		name: "row limit suspends the portal and Execute resumes it",
		send: []pgproto3.FrontendMessage{
			&P{Query: "series 5"}, &B{}, &E{MaxRows: 2}, &E{MaxRows: 2}, &E{MaxRows: 2}, &E{}, sync,
		},
		want: []string{
			"ParseComplete", "BindComplete",
			"DataRow 1", "DataRow 2", "PortalSuspended",
			"DataRow 3", "DataRow 4", "PortalSuspended",
			// Postgres counts the rows of the Execute that ended the
			// portal (testdata/forward/extended.txt checks it against
			// Postgres).
			"DataRow 5", "CommandComplete SELECT 1",
			"CommandComplete SELECT 0",
			"ReadyForQuery I",
		},
	}, {
		name: "describe statement and portal, mixed result formats",
		send: []pgproto3.FrontendMessage{
			&P{Name: "s1", Query: "select $1::int8, $2::text"},
			&D{ObjectType: 'S', Name: "s1"},
			&B{PreparedStatement: "s1", Parameters: [][]byte{[]byte("5"), nil}, ResultFormatCodes: []int16{1, 0}},
			&D{ObjectType: 'P'},
			&E{},
			sync,
		},
		want: []string{
			"ParseComplete", "ParameterDescription [20 25]", "RowDescription p1:20:0,p2:25:0",
			"BindComplete", "RowDescription p1:20:1,p2:25:0",
			"DataRow 0x0000000000000005|NULL", "CommandComplete SELECT 1",
			"ReadyForQuery I",
		},
	}, {
		name: "binary parameters",
		send: []pgproto3.FrontendMessage{
			&P{Query: "select $1::int4, $2::bool, $3::text"},
			&B{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0, 0, 1, 0}, {1}, []byte("t")}},
			&E{},
			sync,
		},
		want: []string{"ParseComplete", "BindComplete", "DataRow 256|t|t", "CommandComplete SELECT 1", "ReadyForQuery I"},
	}, {
		name: "statement without rows describes as NoData",
		send: []pgproto3.FrontendMessage{
			&P{Query: "insert"}, &D{ObjectType: 'S'}, &B{}, &D{ObjectType: 'P'}, &E{}, sync,
		},
		want: []string{
			"ParseComplete", "ParameterDescription []", "NoData", "BindComplete", "NoData",
			"CommandComplete INSERT 0 1", "ReadyForQuery I",
		},
	}, {
		name: "several commands in one Parse",
		send: []pgproto3.FrontendMessage{&P{Query: "select 1; select 2"}, &B{}, &E{}, sync},
		want: []string{
			"ErrorResponse ERROR 42601 cannot insert multiple commands into a prepared statement",
			"ReadyForQuery I",
		},
	}, {
		name: "empty prepared statement",
		send: []pgproto3.FrontendMessage{&P{Query: ""}, &B{}, &D{ObjectType: 'P'}, &E{}, sync},
		want: []string{"ParseComplete", "BindComplete", "NoData", "EmptyQueryResponse", "ReadyForQuery I"},
	}, {
		name: "an error discards messages until Sync",
		send: []pgproto3.FrontendMessage{
			&P{Query: "error 22012"}, &B{}, &E{}, &P{Query: "select 1"}, &B{}, &E{}, sync,
			&P{Query: "select 2"}, &B{}, &E{}, sync,
		},
		want: []string{
			"ParseComplete", "BindComplete", "ErrorResponse ERROR 22012 fake error 22012", "ReadyForQuery I",
			"ParseComplete", "BindComplete", "DataRow 2", "CommandComplete SELECT 1", "ReadyForQuery I",
		},
	}, {
		name: "pipelined named statements and portals",
		send: []pgproto3.FrontendMessage{
			&P{Name: "a", Query: "select 1"}, &P{Name: "b", Query: "series 2"},
			&B{PreparedStatement: "a", DestinationPortal: "pa"}, &B{PreparedStatement: "b", DestinationPortal: "pb"},
			&E{Portal: "pb"}, &E{Portal: "pa"},
			&C{ObjectType: 'P', Name: "pa"}, &C{ObjectType: 'S', Name: "a"}, &C{ObjectType: 'S', Name: "never"},
			&B{PreparedStatement: "a"}, sync,
			&B{PreparedStatement: "b"}, &E{}, sync,
		},
		want: []string{
			"ParseComplete", "ParseComplete", "BindComplete", "BindComplete",
			"DataRow 1", "DataRow 2", "CommandComplete SELECT 2",
			"DataRow 1", "CommandComplete SELECT 1",
			"CloseComplete", "CloseComplete", "CloseComplete",
			`ErrorResponse ERROR 26000 prepared statement "a" does not exist`, "ReadyForQuery I",
			"BindComplete", "DataRow 1", "DataRow 2", "CommandComplete SELECT 2", "ReadyForQuery I",
		},
	}, {
		name: "portals live until the transaction ends",
		send: []pgproto3.FrontendMessage{
			&Q{String: "begin"},
			&P{Query: "series 3"}, &B{DestinationPortal: "c"}, &E{Portal: "c", MaxRows: 1}, sync,
			&E{Portal: "c", MaxRows: 1}, sync,
			&Q{String: "commit"},
			&E{Portal: "c"}, sync,
		},
		want: []string{
			"CommandComplete BEGIN", "ReadyForQuery T",
			"ParseComplete", "BindComplete", "DataRow 1", "PortalSuspended", "ReadyForQuery T",
			"DataRow 2", "PortalSuspended", "ReadyForQuery T",
			"CommandComplete COMMIT", "ReadyForQuery I",
			`ErrorResponse ERROR 34000 portal "c" does not exist`, "ReadyForQuery I",
		},
	}, {
		name: "bind errors",
		send: []pgproto3.FrontendMessage{
			&B{PreparedStatement: "nope"}, sync,
			&P{Query: "select $1::int8"}, &B{}, sync,
			&B{Parameters: [][]byte{[]byte("abc")}}, sync,
			&B{Parameters: [][]byte{[]byte("1")}, ResultFormatCodes: []int16{0, 1}}, sync,
			&E{Portal: "missing"}, sync,
		},
		want: []string{
			`ErrorResponse ERROR 26000 prepared statement "nope" does not exist`, "ReadyForQuery I",
			"ParseComplete", `ErrorResponse ERROR 08P01 bind message supplies 0 parameters, but prepared statement "" requires 1`, "ReadyForQuery I",
			`ErrorResponse ERROR 22P02 invalid input syntax for type int8: "abc" (bind parameter $1)`, "ReadyForQuery I",
			"ErrorResponse ERROR 08P01 bind message has 2 result formats but query has 1 columns", "ReadyForQuery I",
			`ErrorResponse ERROR 34000 portal "missing" does not exist`, "ReadyForQuery I",
		},
	}, {
		name: "binary result for a type without a binary form",
		send: []pgproto3.FrontendMessage{&P{Query: "record"}, &B{ResultFormatCodes: []int16{0, 1, 0}}, sync},
		want: []string{"ParseComplete", "ErrorResponse ERROR 42883 no binary output function available for type 99999", "ReadyForQuery I"},
	}, {
		name: "notices",
		send: []pgproto3.FrontendMessage{&Q{String: "notice 1"}},
		want: []string{"NoticeResponse NOTICE notice 1", "NoticeResponse WARNING careful", "CommandComplete DO", "ReadyForQuery I"},
	}, {
		name: "an error the wire layer raises aborts the transaction block",
		send: []pgproto3.FrontendMessage{
			&Q{String: "begin"},
			&P{Query: "select $1::int8"}, &B{Parameters: [][]byte{[]byte("abc")}}, &E{}, sync,
			&Q{String: "rollback"},
		},
		want: []string{
			"CommandComplete BEGIN", "ReadyForQuery T",
			"ParseComplete", `ErrorResponse ERROR 22P02 invalid input syntax for type int8: "abc" (bind parameter $1)`, "ReadyForQuery E",
			"CommandComplete ROLLBACK", "ReadyForQuery I",
		},
	}, {
		name: "pg_lsn in text and binary",
		send: []pgproto3.FrontendMessage{
			&P{Query: "select $1::text", ParameterOIDs: []uint32{3220}},
			&B{ParameterFormatCodes: []int16{1}, Parameters: [][]byte{{0, 0, 0, 0x16, 0xb3, 0x74, 0xd8, 0x48}}, ResultFormatCodes: []int16{0}}, &E{},
			&B{Parameters: [][]byte{[]byte("16/B374D848")}, ResultFormatCodes: []int16{1}}, &E{},
			&B{Parameters: [][]byte{[]byte("16-B374D848")}}, &E{}, sync,
		},
		want: []string{
			"ParseComplete",
			"BindComplete", "DataRow 16/B374D848", "CommandComplete SELECT 1",
			"BindComplete", "DataRow 0x00000016b374d848", "CommandComplete SELECT 1",
			`ErrorResponse ERROR 22P02 invalid input syntax for type pg_lsn: "16-B374D848" (bind parameter $1)`, "ReadyForQuery I",
		},
	}, {
		name: "a statement reports a changed setting",
		send: []pgproto3.FrontendMessage{&Q{String: "set application_name renamed"}},
		want: []string{"ParameterStatus application_name", "CommandComplete SET", "ReadyForQuery I"},
	}, {
		name: "fastpath function call is refused",
		send: []pgproto3.FrontendMessage{&pgproto3.FunctionCall{Function: 1}},
		want: []string{"ErrorResponse ERROR 0A000 fastpath function calls are not supported", "ReadyForQuery I"},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			c.startup()
			c.send(tc.send...)
			rfq := 0
			for _, w := range tc.want {
				if strings.HasPrefix(w, "ReadyForQuery") {
					rfq++
				}
			}
			got := c.until(rfq)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
			c.send(&pgproto3.Terminate{})
		})
	}
}

func TestProtocolFlush(t *testing.T) {
	ts := startServer(t, wire.Config{})
	c := dialRaw(t, ts)
	c.startup()
	c.send(&pgproto3.Parse{Query: "select 7"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Flush{})
	var got []string
	for len(got) < 4 {
		msg, err := c.fe.Receive()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		got = append(got, describe(msg))
	}
	if want := []string{"ParseComplete", "BindComplete", "DataRow 7", "CommandComplete SELECT 1"}; !slices.Equal(got, want) {
		t.Errorf("got %v", got)
	}
	c.send(&pgproto3.Sync{})
	if got := c.until(1); !slices.Equal(got, []string{"ReadyForQuery I"}) {
		t.Errorf("after Sync: %v", got)
	}
}

func TestStartupMessages(t *testing.T) {
	ts := startServer(t, wire.Config{})
	got := dialRaw(t, ts).startup("application_name", "raw")
	want := []string{"AuthenticationOk"}
	for _, p := range []string{
		"server_version", "server_encoding", "client_encoding", "DateStyle", "integer_datetimes",
		"standard_conforming_strings", "TimeZone", "IntervalStyle", "is_superuser", "session_authorization",
		"application_name", "default_transaction_read_only", "in_hot_standby",
	} {
		want = append(want, "ParameterStatus "+p)
	}
	want = append(want, "BackendKeyData", "ReadyForQuery I")
	if !slices.Equal(got, want) {
		t.Errorf("startup:\n  %s", strings.Join(got, "\n  "))
	}
}

// A message the server cannot parse ends that connection with 08P01, and
// only that connection.
func TestMalformedMessages(t *testing.T) {
	ts := startServer(t, wire.Config{MaxMessageSize: 1024})
	query := func(s string) []byte {
		b, _ := (&pgproto3.Query{String: s}).Encode(nil)
		return b
	}
	for _, tc := range []struct {
		name      string
		bytes     []byte
		closeSend bool
		want      string
	}{
		{"unknown message type", []byte{'z', 0, 0, 0, 4}, false, "ErrorResponse FATAL 08P01 invalid frontend message: unknown message type: z"},
		{"bad length", []byte{'Q', 0, 0, 0, 2}, false, "ErrorResponse FATAL 08P01 invalid frontend message: invalid message length: 2"},
		{"truncated", []byte{'Q', 0, 0, 0, 100, 's', 'e', 'l'}, true, "ErrorResponse FATAL 08P01 unexpected EOF on client connection"},
		{"garbled bind", []byte{'B', 0, 0, 0, 6, 'x', 0}, false, "ErrorResponse FATAL 08P01 invalid frontend message: Bind body is invalid"},
		{"too large", query(strings.Repeat("x", 2000)), false, "ErrorResponse FATAL 08P01 invalid message length: 2001 bytes exceeds the maximum of 1024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dialRaw(t, ts)
			c.startup()
			if _, err := c.conn.Write(tc.bytes); err != nil {
				t.Fatal(err)
			}
			if tc.closeSend {
				c.conn.(*net.TCPConn).CloseWrite()
			}
			got := c.untilEOF()
			if len(got) != 1 || !strings.HasPrefix(got[0], tc.want) {
				t.Errorf("got %q, want %q", got, tc.want)
			}
			// The server is unharmed.
			c2 := dialRaw(t, ts)
			c2.startup()
			c2.send(&pgproto3.Query{String: "select 1"})
			if got := c2.until(1); len(got) != 4 {
				t.Errorf("next connection: %v", got)
			}
		})
	}
	t.Run("bad startup packet", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.conn.Write([]byte{0, 0, 0, 3})
		if got := c.untilEOF(); len(got) != 1 || !strings.HasPrefix(got[0], "ErrorResponse FATAL 08P01 invalid length of startup packet") {
			t.Errorf("got %q", got)
		}
	})
	t.Run("startup parameters without terminator", func(t *testing.T) {
		c := dialRaw(t, ts)
		b := binary.BigEndian.AppendUint32(nil, 0)
		b = binary.BigEndian.AppendUint32(b, pgproto3.ProtocolVersion30)
		b = append(b, "user\x00alice"...)
		binary.BigEndian.PutUint32(b, uint32(len(b)))
		c.conn.Write(b)
		if got := c.untilEOF(); len(got) != 1 || !strings.HasPrefix(got[0], "ErrorResponse FATAL 08P01 invalid startup packet layout") {
			t.Errorf("got %q", got)
		}
	})
}

func TestProtocolVersionNegotiation(t *testing.T) {
	ts := startServer(t, wire.Config{})
	t.Run("newer minor version", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.send(startupMessage(3<<16|5, "_pq_.compression", "on"))
		got := c.until(1)
		if got[0] != "NegotiateProtocolVersion 0 [_pq_.compression]" || got[1] != "AuthenticationOk" {
			t.Fatalf("got %v", got)
		}
		c.send(&pgproto3.Query{String: "select 1"})
		c.until(1)
	})
	t.Run("3.2", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.send(startupMessage(pgproto3.ProtocolVersion32))
		if got := c.until(1); got[0] != "NegotiateProtocolVersion 0 []" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("unknown major version", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.send(startupMessage(4 << 16))
		got := c.untilEOF()
		if len(got) != 1 || got[0] != "ErrorResponse FATAL 0A000 unsupported frontend protocol 4.0: server supports 3.0 to 3.0" {
			t.Fatalf("got %v", got)
		}
	})
	t.Run("no user", func(t *testing.T) {
		c := dialRaw(t, ts)
		c.send(&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"database": "x"}})
		if got := c.untilEOF(); len(got) != 1 || !strings.HasPrefix(got[0], "ErrorResponse FATAL 28000") {
			t.Fatalf("got %v", got)
		}
	})
}

func TestEncryptionRequests(t *testing.T) {
	ts := startServer(t, wire.Config{})
	c := dialRaw(t, ts)
	answer := func(req pgproto3.FrontendMessage) byte {
		b, _ := req.Encode(nil)
		if _, err := c.conn.Write(b); err != nil {
			t.Fatal(err)
		}
		var one [1]byte
		if _, err := io.ReadFull(c.conn, one[:]); err != nil {
			t.Fatal(err)
		}
		return one[0]
	}
	if got := answer(&pgproto3.GSSEncRequest{}); got != 'N' {
		t.Errorf("GSSENCRequest answered %q", got)
	}
	if got := answer(&pgproto3.SSLRequest{}); got != 'N' {
		t.Errorf("SSLRequest without TLS answered %q", got)
	}
	c.startup()
	c.send(&pgproto3.Query{String: "select 1"})
	c.until(1)
}

func TestTooManyConnections(t *testing.T) {
	ts := startServer(t, wire.Config{MaxConnections: 1})
	first := dialRaw(t, ts)
	first.startup()

	// A CancelRequest does not need, or take, a slot.
	cancel := dialRaw(t, ts)
	b, _ := (&pgproto3.CancelRequest{ProcessID: 1, SecretKey: []byte{0, 0, 0, 0}}).Encode(nil)
	cancel.conn.Write(b)
	if got := cancel.untilEOF(); len(got) != 0 {
		t.Errorf("CancelRequest answered %v", got)
	}

	second := dialRaw(t, ts)
	second.send(startupMessage(pgproto3.ProtocolVersion30))
	if got := second.untilEOF(); len(got) != 1 || got[0] != "ErrorResponse FATAL 53300 sorry, too many clients already" {
		t.Errorf("got %v", got)
	}
	first.send(&pgproto3.Query{String: "select 1"})
	first.until(1)
}

func TestIdleSessionTimeout(t *testing.T) {
	t.Parallel() // it mostly sleeps
	ts := startServer(t, wire.Config{IdleSessionTimeout: time.Second})
	c := dialRaw(t, ts)
	c.startup()
	// Activity resets the clock.
	for range 3 {
		time.Sleep(400 * time.Millisecond)
		c.send(&pgproto3.Query{String: "select 1"})
		c.until(1)
	}
	start := time.Now()
	got := c.untilEOF()
	if len(got) != 1 || got[0] != "ErrorResponse FATAL 57P05 terminating connection due to idle-session timeout" {
		t.Errorf("got %v", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("timed out after %v", d)
	}
}

func TestTerminateClosesSession(t *testing.T) {
	ts := startServer(t, wire.Config{})
	c := dialRaw(t, ts)
	c.startup()
	c.send(&pgproto3.Terminate{})
	if got := c.untilEOF(); len(got) != 0 {
		t.Errorf("after Terminate: %v", got)
	}
	ts.h.waitClosed(t)
	if ts.h.opened.Load() != 1 {
		t.Errorf("opened %d sessions", ts.h.opened.Load())
	}
}

func TestSCRAMProtocolErrors(t *testing.T) {
	ts := startServer(t, wire.Config{Password: "pw"})
	begin := func(t *testing.T) *rawClient {
		c := dialRaw(t, ts)
		c.send(startupMessage(pgproto3.ProtocolVersion30))
		msg, err := c.fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		if sasl, ok := msg.(*pgproto3.AuthenticationSASL); !ok || !slices.Equal(sasl.AuthMechanisms, []string{"SCRAM-SHA-256"}) {
			t.Fatalf("got %#v, want SCRAM-SHA-256 only", msg)
		}
		return c
	}
	for _, tc := range []struct{ name, mech, data, want string }{
		{"channel binding", "SCRAM-SHA-256", "p=tls-server-end-point,,n=,r=abcdef", "ErrorResponse FATAL 08P01 malformed SCRAM message"},
		{"unknown mechanism", "SCRAM-SHA-1", "n,,n=,r=abcdef", "ErrorResponse FATAL 08P01 client selected an invalid SASL authentication mechanism"},
		{"authorization identity", "SCRAM-SHA-256", "n,a=bob,n=,r=abcdef", "ErrorResponse FATAL 0A000 client uses authorization identity, but it is not supported"},
		{"garbage", "SCRAM-SHA-256", "hello", "ErrorResponse FATAL 08P01 malformed SCRAM message"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := begin(t)
			c.send(&pgproto3.SASLInitialResponse{AuthMechanism: tc.mech, Data: []byte(tc.data)})
			if got := c.untilEOF(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
	for _, tc := range []struct{ name, nonceSuffix, want string }{
		{"wrong nonce", "x", "ErrorResponse FATAL 08P01 malformed SCRAM message"},
		{"wrong proof", "", `ErrorResponse FATAL 28P01 password authentication failed for user "alice"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := begin(t)
			c.send(&pgproto3.SASLInitialResponse{AuthMechanism: "SCRAM-SHA-256", Data: []byte("n,,n=,r=clientnonce")})
			msg, err := c.fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
			cont, ok := msg.(*pgproto3.AuthenticationSASLContinue)
			if !ok {
				t.Fatalf("got %#v", msg)
			}
			nonce, _, _ := strings.Cut(strings.TrimPrefix(string(cont.Data), "r="), ",")
			if !strings.HasPrefix(nonce, "clientnonce") || !strings.Contains(string(cont.Data), ",i=4096") {
				t.Fatalf("server-first-message %q", cont.Data)
			}
			proof := "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
			c.send(&pgproto3.SASLResponse{Data: []byte("c=biws,r=" + nonce + tc.nonceSuffix + ",p=" + proof)})
			if got := c.untilEOF(); len(got) != 1 || got[0] != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// An error in the extended protocol reaches the client at once, before
// Sync, as Postgres sends it: a client (or a proxy in front of wire)
// waiting for the answer to a Flush must not wait for a Sync it has not
// sent.
func TestErrorIsSentBeforeSync(t *testing.T) {
	ts := startServer(t, wire.Config{})
	c := dialRaw(t, ts)
	c.startup()
	c.send(&pgproto3.Parse{Query: "bogus"}, &pgproto3.Bind{}, &pgproto3.Execute{}, &pgproto3.Flush{})
	msg, err := c.fe.Receive()
	if err != nil {
		t.Fatalf("no answer before Sync: %v", err)
	}
	if got := describe(msg); !strings.HasPrefix(got, "ErrorResponse ERROR 42601") {
		t.Fatalf("got %s, want the syntax error", got)
	}
	c.send(&pgproto3.Sync{})
	if got := c.until(1); strings.Join(got, ",") != "ReadyForQuery I" {
		t.Fatalf("after Sync: %v", got)
	}
}
