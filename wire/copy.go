package wire

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgcdc/pgcdc/internal/copytext"
)

// This file holds the COPY sub-protocol of a value-level session. A
// statement takes part in it by returning a Result that is also a
// CopyOutResult (COPY ... TO STDOUT) or a CopyInResult (COPY ... FROM
// STDIN). The handler says what is copied (the columns and their types)
// and how (CopyOptions); the wire layer owns the data formats, text, csv
// and binary, and encodes and decodes values with the same pgtype.Map as
// DataRows and Bind parameters. Data moves row by row in both directions,
// so a COPY of any size runs in the memory of one row.

// CopyFormat is the format of COPY data.
type CopyFormat int8

// The COPY formats, as Postgres defines them.
const (
	CopyText CopyFormat = iota
	CopyCSV
	CopyBinary
)

// CopyOptions say how the data of one COPY is formatted. Every field is
// used as given: the handler fills in Postgres's defaults (a tab and \N
// for text; a comma, the empty string and a double quote for csv).
type CopyOptions struct {
	Format CopyFormat
	// Columns are the copied columns: names for HEADER, types to encode
	// and decode values.
	Columns []Column
	// Table names the copy in error context ("COPY t, line 3").
	Table     string
	Delimiter byte
	Null      string
	Header    bool
	// HeaderMatch (COPY FROM) checks the header line against the column
	// names instead of skipping it.
	HeaderMatch bool
	Quote       byte // csv
	Escape      byte // csv
	// ForceQuote (COPY TO, csv) quotes every non-NULL value of a column;
	// ForceNotNull and ForceNull (COPY FROM, csv) read an unquoted null
	// string as a value and a quoted one as NULL. Each is nil or one flag
	// per column.
	ForceQuote   []bool
	ForceNotNull []bool
	ForceNull    []bool
}

// CopyOutResult is a Result whose rows go to the client as COPY data
// (CopyOutResponse, CopyData..., CopyDone) instead of DataRows. Next
// returns the rows as for any Result, one value per CopyOptions column.
type CopyOutResult interface {
	Result
	CopyOut() CopyOptions
}

// CopyInResult is a Result that takes rows from the client: the wire
// layer answers CopyInResponse, reads CopyData until CopyDone or
// CopyFail, and hands each row to Put, decoded per column type as
// DecodeParam decodes parameters (nil for NULL).
type CopyInResult interface {
	Result
	CopyIn() CopyOptions
	// Put takes one row.
	Put(ctx context.Context, row []any) error
	// End ends the copy. err is nil when the data ended with CopyDone and
	// every row was put; otherwise it is why the copy failed (CopyFail, bad
	// data, a cancel, a lost connection), and End undoes what was put.
	// After End(nil) returns nil, Tag is the command tag ("COPY n").
	End(ctx context.Context, err error) error
}

// runCopy runs the COPY sub-protocol when res takes part in it. handled is
// false for an ordinary result.
func (sess *session) runCopy(ctx context.Context, res Result) (handled bool, err error) {
	switch r := res.(type) {
	case CopyOutResult:
		return true, sess.copyOut(ctx, r)
	case CopyInResult:
		return true, sess.copyIn(ctx, r)
	}
	return false, nil
}

func copyResponseFormats(opts CopyOptions) (overall byte, cols []uint16) {
	cols = make([]uint16, len(opts.Columns))
	if opts.Format == CopyBinary {
		overall = 1
		for i := range cols {
			cols[i] = 1
		}
	}
	return overall, cols
}

// copyOut streams res to the client as COPY data.
func (sess *session) copyOut(ctx context.Context, res CopyOutResult) error {
	opts := res.CopyOut()
	if opts.Format == CopyBinary {
		for _, c := range opts.Columns {
			if !hasBinaryForm(sess.types, c.OID) {
				return errorf(codeUndefinedFunction, "no binary output function available for type %d", c.OID)
			}
		}
	}
	enc := &copyEncoder{m: sess.types, opts: opts}
	overall, cols := copyResponseFormats(opts)
	sess.out.send(&pgproto3.CopyOutResponse{OverallFormat: overall, ColumnFormatCodes: cols})
	if data := enc.header(nil); len(data) > 0 {
		sess.out.send(&pgproto3.CopyData{Data: data})
	}
	var buf []byte
	for {
		row, err := res.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		if len(row) != len(opts.Columns) {
			return fmt.Errorf("wire: statement returned a row of %d values for %d columns", len(row), len(opts.Columns))
		}
		if buf, err = enc.row(buf[:0], row); err != nil {
			return err
		}
		sess.out.send(&pgproto3.CopyData{Data: buf})
		if err := sess.out.error(); err != nil {
			return &sessionEnd{errConnLost}
		}
	}
	if opts.Format == CopyBinary {
		sess.out.send(&pgproto3.CopyData{Data: []byte{0xff, 0xff}})
	}
	sess.out.send(&pgproto3.CopyDone{})
	return nil
}

// copyIn reads the client's COPY data into res. Postgres ignores Flush
// and Sync during COPY FROM STDIN, for clients that send them without
// noticing the command was a COPY; anything else ends the copy with an
// error. After an error the client's remaining COPY messages are ignored
// by the message loop, as in Postgres.
func (sess *session) copyIn(ctx context.Context, res CopyInResult) error {
	opts := res.CopyIn()
	dec := &copyDecoder{m: sess.types, opts: opts}
	put := func(row []any) error { return res.Put(ctx, row) }
	overall, cols := copyResponseFormats(opts)
	sess.out.sendFlush(&pgproto3.CopyInResponse{OverallFormat: overall, ColumnFormatCodes: cols})
	for {
		var in inbound
		select {
		case in = <-sess.in:
		case <-ctx.Done():
			err := toPgError(ctx, context.Cause(ctx))
			res.End(context.WithoutCancel(ctx), err)
			return err
		}
		if in.err != nil {
			// The reader has stopped; the message loop reports why once the
			// copy is over.
			sess.readErr = in.err
			err := errorf(codeProtocolViolation, "unexpected end of COPY from stdin: %v", in.err)
			res.End(context.WithoutCancel(ctx), err)
			return err
		}
		var err error
		switch m := in.msg.(type) {
		case *pgproto3.CopyData:
			err = dec.feed(m.Data, put)
		case *pgproto3.CopyDone:
			if err = dec.finish(put); err == nil {
				return res.End(ctx, nil)
			}
		case *pgproto3.CopyFail:
			err = errorf(codeQueryCanceled, "COPY from stdin failed: %s", m.Message)
		case *pgproto3.Flush, *pgproto3.Sync:
			continue
		case *pgproto3.Terminate:
			// The reader stops after Terminate: the session ends next.
			sess.readErr = io.EOF
			err = errorf(codeProtocolViolation, "unexpected message type 0x58 during COPY from stdin")
		default:
			err = errorf(codeProtocolViolation, "unexpected message type %T during COPY from stdin", in.msg)
		}
		if err != nil {
			res.End(context.WithoutCancel(ctx), err)
			return err
		}
	}
}

// copyEncoder writes rows in a COPY format.
type copyEncoder struct {
	m       *pgtype.Map
	opts    CopyOptions
	scratch []byte
}

var copySignature = []byte("PGCOPY\n\xff\r\n\x00")

// header is what precedes the rows: the binary signature, or a header line
// of column names.
func (e *copyEncoder) header(buf []byte) []byte {
	switch {
	case e.opts.Format == CopyBinary:
		buf = append(buf, copySignature...)
		return append(buf, 0, 0, 0, 0, 0, 0, 0, 0) // flags, extension length
	case !e.opts.Header:
		return buf
	}
	for i, c := range e.opts.Columns {
		if i > 0 {
			buf = append(buf, e.opts.Delimiter)
		}
		buf = e.appendField(buf, []byte(c.Name), false)
	}
	return append(buf, '\n')
}

func (e *copyEncoder) row(buf []byte, row []any) ([]byte, error) {
	if e.opts.Format == CopyBinary {
		buf = binary.BigEndian.AppendUint16(buf, uint16(len(row)))
		for i, v := range row {
			lenAt := len(buf)
			buf = append(buf, 0, 0, 0, 0)
			out, err := appendValue(e.m, buf, e.opts.Columns[i].OID, pgtype.BinaryFormatCode, v)
			if err != nil {
				return nil, e.encodeError(i, v, err)
			}
			if out == nil {
				binary.BigEndian.PutUint32(buf[lenAt:], 0xffffffff)
				continue
			}
			binary.BigEndian.PutUint32(out[lenAt:], uint32(len(out)-lenAt-4))
			buf = out
		}
		return buf, nil
	}
	for i, v := range row {
		if i > 0 {
			buf = append(buf, e.opts.Delimiter)
		}
		out, err := appendValue(e.m, e.scratch[:0], e.opts.Columns[i].OID, pgtype.TextFormatCode, v)
		if err != nil {
			return nil, e.encodeError(i, v, err)
		}
		if out == nil {
			buf = append(buf, e.opts.Null...)
			continue
		}
		e.scratch = out
		force := e.opts.ForceQuote != nil && e.opts.ForceQuote[i]
		buf = e.appendField(buf, out, force)
	}
	return append(buf, '\n'), nil
}

func (e *copyEncoder) encodeError(i int, v any, err error) error {
	c := e.opts.Columns[i]
	return fmt.Errorf("wire: encode column %q (type %d) from %T: %w", c.Name, c.OID, v, err)
}

// appendField writes one non-NULL value as Postgres's COPY does
// (CopyAttributeOutText, CopyAttributeOutCSV).
func (e *copyEncoder) appendField(buf, v []byte, forceQuote bool) []byte {
	o := e.opts
	if o.Format == CopyText {
		for _, c := range v {
			// Control characters get their named escapes first, as in
			// CopyAttributeOutText, even when one is the delimiter.
			switch {
			case c == '\b':
				buf = append(buf, '\\', 'b')
			case c == '\f':
				buf = append(buf, '\\', 'f')
			case c == '\n':
				buf = append(buf, '\\', 'n')
			case c == '\r':
				buf = append(buf, '\\', 'r')
			case c == '\t':
				buf = append(buf, '\\', 't')
			case c == '\v':
				buf = append(buf, '\\', 'v')
			case c == '\\' || c == o.Delimiter:
				buf = append(buf, '\\', c)
			default:
				buf = append(buf, c)
			}
		}
		return buf
	}
	quote := forceQuote || string(v) == o.Null
	if !quote {
		if len(o.Columns) == 1 && string(v) == `\.` {
			// Alone on a line it would read as the end-of-data marker.
			quote = true
		} else {
			quote = bytes.ContainsAny(v, string([]byte{o.Delimiter, o.Quote, '\n', '\r'}))
		}
	}
	if !quote {
		return append(buf, v...)
	}
	buf = append(buf, o.Quote)
	for _, c := range v {
		if c == o.Quote || c == o.Escape {
			buf = append(buf, o.Escape)
		}
		buf = append(buf, c)
	}
	return append(buf, o.Quote)
}

// copyDecoder splits the client's COPY data into rows. It keeps only the
// bytes of the record it has not seen the end of.
type copyDecoder struct {
	m      *pgtype.Map
	opts   CopyOptions
	buf    []byte
	line   int64 // of the last record read, for error context
	header bool  // the header line or binary header has been read
	ended  bool  // the end-of-data marker or the binary trailer was seen
}

func (d *copyDecoder) feed(data []byte, put func([]any) error) error {
	if d.ended {
		return nil
	}
	d.buf = append(d.buf, data...)
	return d.drain(false, put)
}

// finish reads what is left after CopyDone.
func (d *copyDecoder) finish(put func([]any) error) error {
	if d.ended {
		return nil
	}
	if err := d.drain(true, put); err != nil {
		return err
	}
	if d.opts.Format == CopyBinary && len(d.buf) > 0 {
		return d.dataError("unexpected EOF in COPY data")
	}
	return nil
}

func (d *copyDecoder) drain(final bool, put func([]any) error) error {
	consumed := 0
	defer func() {
		// Keep only the unread tail, at the start of the buffer.
		n := copy(d.buf, d.buf[consumed:])
		d.buf = d.buf[:n]
	}()
	for !d.ended {
		rest := d.buf[consumed:]
		if len(rest) == 0 {
			return nil
		}
		var (
			fields [][]byte
			quoted []bool
			n      int
			ok     bool
			err    error
		)
		switch d.opts.Format {
		case CopyBinary:
			if !d.header {
				n, ok, err = d.binaryHeader(rest)
				if err != nil || !ok {
					return err
				}
				consumed += n
				d.header = true
				continue
			}
			fields, n, ok, err = d.binaryTuple(rest)
		case CopyCSV:
			fields, quoted, n, ok, err = d.csvRecord(rest, final)
		default:
			fields, n, ok = d.textRecord(rest, final)
		}
		if err != nil || !ok {
			return err
		}
		consumed += n
		if d.ended {
			return nil
		}
		d.line++
		if d.opts.Format != CopyBinary && d.opts.Header && !d.header {
			d.header = true
			if err := d.checkHeader(fields); err != nil {
				return err
			}
			continue
		}
		row, err := d.decode(fields, quoted)
		if err != nil {
			return err
		}
		if err := put(row); err != nil {
			return err
		}
	}
	return nil
}

// textRecord reads one line of text format. ok is false when the line is
// not complete yet. fields hold the raw (still escaped) text.
func (d *copyDecoder) textRecord(b []byte, final bool) (fields [][]byte, n int, ok bool) {
	end := bytes.IndexByte(b, '\n')
	n = end + 1
	if end < 0 {
		if !final {
			return nil, 0, false
		}
		end, n = len(b), len(b)
	}
	line := b[:end]
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	if string(line) == `\.` {
		d.ended = true
		return nil, n, true
	}
	start := 0
	for i := 0; i < len(line); i++ {
		switch line[i] {
		case '\\':
			i++
		case d.opts.Delimiter:
			fields = append(fields, line[start:i])
			start = i + 1
		}
	}
	return append(fields, line[start:]), n, true
}

// unescapeText undoes the text format's backslash escapes.
func unescapeText(raw []byte) []byte {
	if bytes.IndexByte(raw, '\\') < 0 {
		return raw
	}
	return copytext.AppendUnescaped(make([]byte, 0, len(raw)), raw)
}

// csvRecord reads one csv record, which may span lines inside quotes.
// fields hold the values with quotes and escapes undone.
func (d *copyDecoder) csvRecord(b []byte, final bool) (fields [][]byte, quoted []bool, n int, ok bool, err error) {
	o := d.opts
	if bytes.HasPrefix(b, []byte(`\.`)) {
		if len(b) == 2 && final || len(b) > 2 && (b[2] == '\n' || b[2] == '\r') {
			d.ended = true
			return nil, nil, len(b), true, nil
		}
		if len(b) < 4 && !final {
			return nil, nil, 0, false, nil
		}
	}
	field := []byte{}
	isQuoted, inQuote := false, false
	endField := func() {
		fields = append(fields, field)
		quoted = append(quoted, isQuoted)
		field, isQuoted = []byte{}, false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if inQuote {
			if c == o.Escape && i+1 == len(b) && !final {
				return nil, nil, 0, false, nil
			}
			if c == o.Escape && i+1 < len(b) && (b[i+1] == o.Quote || b[i+1] == o.Escape) {
				i++
				field = append(field, b[i])
				continue
			}
			if c == o.Quote {
				inQuote = false
				continue
			}
			field = append(field, c)
			continue
		}
		switch c {
		case o.Delimiter:
			endField()
		case o.Quote:
			inQuote, isQuoted = true, true
		case '\n':
			endField()
			return fields, quoted, i + 1, true, nil
		case '\r':
			if i+1 == len(b) && !final {
				return nil, nil, 0, false, nil
			}
			endField()
			if i+1 < len(b) && b[i+1] == '\n' {
				i++
			}
			return fields, quoted, i + 1, true, nil
		default:
			field = append(field, c)
		}
	}
	if !final {
		return nil, nil, 0, false, nil
	}
	if inQuote {
		return nil, nil, 0, false, d.dataError("unterminated CSV quoted field")
	}
	endField()
	return fields, quoted, len(b), true, nil
}

func (d *copyDecoder) binaryHeader(b []byte) (n int, ok bool, err error) {
	if len(b) < len(copySignature)+8 {
		if !bytes.HasPrefix(copySignature, b[:min(len(b), len(copySignature))]) {
			return 0, false, d.dataError("COPY file signature not recognized")
		}
		return 0, false, nil
	}
	if !bytes.HasPrefix(b, copySignature) {
		return 0, false, d.dataError("COPY file signature not recognized")
	}
	flags := binary.BigEndian.Uint32(b[11:])
	if flags&0xffff0000 != 0 {
		return 0, false, d.dataError("unrecognized critical flags in COPY file header")
	}
	ext := int(binary.BigEndian.Uint32(b[15:]))
	if ext < 0 {
		return 0, false, d.dataError("invalid COPY file header (missing length)")
	}
	if len(b) < 19+ext {
		return 0, false, nil
	}
	return 19 + ext, true, nil
}

// binaryTuple reads one tuple, or the trailer.
func (d *copyDecoder) binaryTuple(b []byte) (fields [][]byte, n int, ok bool, err error) {
	if len(b) < 2 {
		return nil, 0, false, nil
	}
	count := int16(binary.BigEndian.Uint16(b))
	if count == -1 {
		d.ended = true
		return nil, len(b), true, nil
	}
	if int(count) != len(d.opts.Columns) {
		return nil, 0, false, d.dataError(fmt.Sprintf("row field count is %d, expected %d", count, len(d.opts.Columns)))
	}
	n = 2
	for range count {
		if len(b) < n+4 {
			return nil, 0, false, nil
		}
		l := int32(binary.BigEndian.Uint32(b[n:]))
		n += 4
		if l == -1 {
			fields = append(fields, nil)
			continue
		}
		if l < 0 {
			return nil, 0, false, d.dataError("invalid field size")
		}
		if len(b) < n+int(l) {
			return nil, 0, false, nil
		}
		fields = append(fields, b[n:n+int(l):n+int(l)])
		n += int(l)
	}
	return fields, n, true, nil
}

func (d *copyDecoder) checkHeader(fields [][]byte) error {
	if !d.opts.HeaderMatch {
		return nil
	}
	cols := d.opts.Columns
	if len(fields) != len(cols) {
		return d.dataError(fmt.Sprintf("wrong number of fields in header line: got %d, expected %d", len(fields), len(cols)))
	}
	for i, f := range fields {
		name := string(f)
		if d.opts.Format == CopyText {
			name = string(unescapeText(f))
		}
		if name != cols[i].Name {
			return d.dataError(fmt.Sprintf("column name mismatch in header line field %d: got \"%s\", expected \"%s\"", i+1, name, cols[i].Name))
		}
	}
	return nil
}

// decode turns a record's fields into a row of Go values.
func (d *copyDecoder) decode(fields [][]byte, quoted []bool) ([]any, error) {
	o, cols := d.opts, d.opts.Columns
	if o.Format != CopyBinary {
		if len(fields) > len(cols) {
			return nil, d.dataError("extra data after last expected column")
		}
		if len(fields) < len(cols) {
			return nil, d.dataError(fmt.Sprintf("missing data for column \"%s\"", cols[len(fields)].Name))
		}
	}
	row := make([]any, len(cols))
	for i, f := range fields {
		format := int16(pgtype.TextFormatCode)
		switch o.Format {
		case CopyBinary:
			format = pgtype.BinaryFormatCode
		case CopyText:
			if string(f) == o.Null {
				continue
			}
			f = unescapeText(f)
		case CopyCSV:
			isNull := string(f) == o.Null
			if quoted[i] {
				isNull = isNull && o.ForceNull != nil && o.ForceNull[i]
			} else if o.ForceNotNull != nil && o.ForceNotNull[i] {
				isNull = false
			}
			if isNull {
				continue
			}
		}
		if f == nil {
			continue
		}
		v, err := DecodeParam(d.m, cols[i].OID, format, f)
		if err != nil {
			pe := toPgError(context.Background(), err)
			pe.Where = fmt.Sprintf("COPY %s, line %d, column %s: \"%s\"", d.opts.Table, d.line, cols[i].Name, truncateForContext(f, format))
			return nil, pe
		}
		row[i] = v
	}
	return row, nil
}

func truncateForContext(f []byte, format int16) string {
	if format == pgtype.BinaryFormatCode {
		return fmt.Sprintf("%d bytes", len(f))
	}
	s := strings.ToValidUTF8(string(f), "?")
	if len(s) > 100 {
		s = s[:100] + "..."
	}
	return s
}

// dataError is Postgres's bad_copy_file_format (22P04), with the line.
func (d *copyDecoder) dataError(msg string) *pgconn.PgError {
	pe := errorf(codeBadCopyFileFormat, "%s", msg)
	pe.Where = fmt.Sprintf("COPY %s, line %d", d.opts.Table, d.line+1)
	return pe
}
