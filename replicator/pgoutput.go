package replicator

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Changes are most of a stream, so the reader decodes pgoutput's Insert,
// Update and Delete messages itself: one copy of the message, whose
// values the tuple's columns point into. pglogrepl's parser, used for
// every other message, allocates each value and each column on its own,
// fourteen allocations for a four-column insert.

// tupleCol is one column of a pgoutput TupleData.
type tupleCol struct {
	kind byte   // 'n' null, 'u' unchanged TOAST, 't' text, 'b' binary
	data []byte // the value, for 't' and 'b'
}

// change is a decoded Insert, Update or Delete: old is nil unless the
// message carries the old key or row ('K' or 'O'), new is nil for a Delete.
type change struct {
	relID    uint32
	old, new []tupleCol
}

var errShortMessage = errors.New("message too short")

// decodeChange decodes an Insert ('I'), Update ('U') or Delete ('D')
// message of protocol version 1.
func decodeChange(msg []byte) (change, error) {
	var c change
	if len(msg) < 6 {
		return c, errShortMessage
	}
	typ := msg[0]
	buf := append([]byte(nil), msg[5:]...)
	c.relID = binary.BigEndian.Uint32(msg[1:5])
	var err error
	switch typ {
	case 'I':
		if buf[0] != 'N' {
			return c, fmt.Errorf("insert: expected tuple 'N', got %q", buf[0])
		}
		c.new, buf, err = decodeTuple(buf[1:])
	case 'U':
		if buf[0] == 'K' || buf[0] == 'O' {
			if c.old, buf, err = decodeTuple(buf[1:]); err != nil {
				return c, err
			}
		}
		if len(buf) == 0 || buf[0] != 'N' {
			return c, errors.New("update: no new tuple")
		}
		c.new, buf, err = decodeTuple(buf[1:])
	case 'D':
		if buf[0] != 'K' && buf[0] != 'O' {
			return c, fmt.Errorf("delete: expected tuple 'K' or 'O', got %q", buf[0])
		}
		c.old, buf, err = decodeTuple(buf[1:])
	default:
		return c, fmt.Errorf("not a change message: %q", typ)
	}
	if err == nil && len(buf) != 0 {
		err = fmt.Errorf("%d bytes after the last tuple", len(buf))
	}
	return c, err
}

// decodeTuple decodes a TupleData and returns what follows it.
func decodeTuple(buf []byte) ([]tupleCol, []byte, error) {
	if len(buf) < 2 {
		return nil, nil, errShortMessage
	}
	n := int(binary.BigEndian.Uint16(buf))
	buf = buf[2:]
	cols := make([]tupleCol, n)
	for i := range cols {
		if len(buf) < 1 {
			return nil, nil, errShortMessage
		}
		kind := buf[0]
		buf = buf[1:]
		cols[i].kind = kind
		switch kind {
		case 'n', 'u':
		case 't', 'b':
			if len(buf) < 4 {
				return nil, nil, errShortMessage
			}
			l := int(binary.BigEndian.Uint32(buf))
			buf = buf[4:]
			if l < 0 || len(buf) < l {
				return nil, nil, errShortMessage
			}
			cols[i].data = buf[:l:l]
			buf = buf[l:]
		default:
			return nil, nil, fmt.Errorf("unknown tuple column kind %q", kind)
		}
	}
	return cols, buf, nil
}
