package wire

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/rs/zerolog"
)

// A frame is one protocol message as it travels: a type byte, a 4-byte
// big-endian length that counts itself, and the body. Forwarded sessions
// move frames without decoding them; only the few a forwarding session
// must look into (Query, Parse, and the extended messages that name a
// statement it answers itself) are decoded, with pgproto3.

const frameHeaderLen = 5

// nextFrame looks at the start of b. It returns the frame's type, its
// total size (header included) and whether all of it is in b. A length
// that cannot be a message (below 4, or a body over maxBody) is an error.
func nextFrame(b []byte, maxBody int) (t byte, size int, complete bool, err error) {
	if len(b) < frameHeaderLen {
		return 0, 0, false, nil
	}
	n := int(int32(binary.BigEndian.Uint32(b[1:5])))
	if n < 4 {
		return 0, 0, false, fmt.Errorf("invalid message length %d", n)
	}
	if maxBody > 0 && n-4 > maxBody {
		return 0, 0, false, &pgproto3.ExceededMaxBodyLenErr{MaxExpectedBodyLen: maxBody, ActualBodyLen: n - 4}
	}
	return b[0], 1 + n, len(b) >= 1+n, nil
}

// appendFrame encodes msg onto buf.
func appendFrame(buf []byte, msg interface{ Encode([]byte) ([]byte, error) }) []byte {
	out, err := msg.Encode(buf)
	if err != nil {
		// Only messages wire builds itself are encoded here, and they
		// always fit.
		panic(fmt.Sprintf("wire: encode %T: %v", msg, err))
	}
	return out
}

// cstring returns the NUL-terminated string at the start of b and the rest.
func cstring(b []byte) (string, []byte, bool) {
	s, rest, ok := cbytes(b)
	return string(s), rest, ok
}

// cbytes is cstring without the copy: map lookups with string(s) do not
// allocate.
func cbytes(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// decodeFrontend decodes a client frame body. pgproto3's decoders may
// panic on malformed input, which becomes an error here.
func decodeFrontend(t byte, body []byte) (msg pgproto3.FrontendMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("malformed message: %v", r)
		}
	}()
	switch t {
	case 'B':
		msg = &pgproto3.Bind{}
	case 'C':
		msg = &pgproto3.Close{}
	case 'D':
		msg = &pgproto3.Describe{}
	case 'E':
		msg = &pgproto3.Execute{}
	case 'F':
		msg = &pgproto3.FunctionCall{}
	case 'H':
		msg = &pgproto3.Flush{}
	case 'P':
		msg = &pgproto3.Parse{}
	case 'Q':
		msg = &pgproto3.Query{}
	case 'S':
		msg = &pgproto3.Sync{}
	case 'X':
		msg = &pgproto3.Terminate{}
	case 'd':
		msg = &pgproto3.CopyData{}
	case 'c':
		msg = &pgproto3.CopyDone{}
	case 'f':
		msg = &pgproto3.CopyFail{}
	default:
		return nil, fmt.Errorf("unknown message type %q", t)
	}
	if err := msg.Decode(body); err != nil {
		return nil, err
	}
	return msg, nil
}

// decodeBackend decodes a server frame body, for trace logging only.
func decodeBackend(t byte, body []byte) (msg pgproto3.BackendMessage, err error) {
	defer func() {
		if r := recover(); r != nil {
			msg, err = nil, fmt.Errorf("malformed message: %v", r)
		}
	}()
	switch t {
	case '1':
		msg = &pgproto3.ParseComplete{}
	case '2':
		msg = &pgproto3.BindComplete{}
	case '3':
		msg = &pgproto3.CloseComplete{}
	case 'A':
		msg = &pgproto3.NotificationResponse{}
	case 'C':
		msg = &pgproto3.CommandComplete{}
	case 'c':
		msg = &pgproto3.CopyDone{}
	case 'D':
		msg = &pgproto3.DataRow{}
	case 'd':
		msg = &pgproto3.CopyData{}
	case 'E':
		msg = &pgproto3.ErrorResponse{}
	case 'G':
		msg = &pgproto3.CopyInResponse{}
	case 'H':
		msg = &pgproto3.CopyOutResponse{}
	case 'I':
		msg = &pgproto3.EmptyQueryResponse{}
	case 'K':
		msg = &pgproto3.BackendKeyData{}
	case 'n':
		msg = &pgproto3.NoData{}
	case 'N':
		msg = &pgproto3.NoticeResponse{}
	case 'S':
		msg = &pgproto3.ParameterStatus{}
	case 's':
		msg = &pgproto3.PortalSuspended{}
	case 'T':
		msg = &pgproto3.RowDescription{}
	case 't':
		msg = &pgproto3.ParameterDescription{}
	case 'V':
		msg = &pgproto3.FunctionCallResponse{}
	case 'W':
		msg = &pgproto3.CopyBothResponse{}
	case 'Z':
		msg = &pgproto3.ReadyForQuery{}
	default:
		return nil, fmt.Errorf("unknown message type %q", t)
	}
	if err := msg.Decode(body); err != nil {
		return nil, err
	}
	return msg, nil
}

// traceFrames logs every complete frame in b at trace level, decoded the
// way the value-level session logs its messages. Only called when trace
// logging is on: decoding is what forwarding otherwise avoids.
func traceFrames(log zerolog.Logger, from string, b []byte, client bool) {
	for len(b) > 0 {
		t, size, complete, err := nextFrame(b, 0)
		if err != nil || !complete {
			return
		}
		body := b[frameHeaderLen:size]
		var msg any
		if client {
			msg, err = decodeFrontend(t, body)
		} else {
			msg, err = decodeBackend(t, body)
		}
		e := log.Trace().Str("from", from)
		if err != nil {
			e.Str("type", string(t)).Int("size", size).Msg("wire: message")
		} else {
			e.Interface("msg", msg).Msg("wire: message")
		}
		b = b[size:]
	}
}
