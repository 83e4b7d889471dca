package wire

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
)

// This file holds the simple query protocol and what it shares with the
// extended one: running a statement and streaming its rows.

// simpleQuery runs a Query message: every statement in it, in order, each
// answered with RowDescription, DataRows and CommandComplete; the first
// error skips the rest. It always ends with ReadyForQuery.
func (sess *session) simpleQuery(query string) error {
	// Postgres drops the unnamed statement and portal here too.
	sess.closePortal("")
	delete(sess.statements, "")

	ctx, end := sess.beginStatement(sess.ctx)
	stmts, err := sess.handler.Parse(ctx, query, nil)
	end()
	if err != nil {
		if err := sess.fail(ctx, err); err != nil {
			return err
		}
		sess.readyForQuery()
		return nil
	}
	if len(stmts) == 0 {
		sess.out.send(&pgproto3.EmptyQueryResponse{})
		sess.readyForQuery()
		return nil
	}
	for _, stmt := range stmts {
		ctx, end := sess.beginStatement(sess.ctx)
		err := sess.runSimple(ctx, stmt)
		end()
		if err != nil {
			if err := sess.fail(ctx, err); err != nil {
				return err
			}
			break
		}
	}
	sess.readyForQuery()
	return nil
}

func (sess *session) runSimple(ctx context.Context, stmt Statement) error {
	cols := columnDefaults(stmt.Columns())
	res, err := execute(ctx, stmt, nil, notifier{sess})
	if err != nil {
		return err
	}
	defer res.Close()
	if handled, err := sess.runCopy(ctx, res); handled {
		if err != nil {
			return err
		}
		sess.out.send(&pgproto3.CommandComplete{CommandTag: []byte(res.Tag())})
		return nil
	}
	if cols != nil {
		sess.out.send(rowDescription(cols, nil))
	}
	if _, _, err := sess.streamRows(ctx, res, cols, nil, 0); err != nil {
		return err
	}
	sess.out.send(&pgproto3.CommandComplete{CommandTag: []byte(res.Tag())})
	return nil
}

// execute runs stmt, holding the handler to returning a Result.
func execute(ctx context.Context, stmt Statement, params []any, n Notifier) (Result, error) {
	res, err := stmt.Execute(ctx, params, n)
	if err == nil && res == nil {
		err = errors.New("wire: statement returned neither a result nor an error")
	}
	return res, err
}

// streamRows sends up to maxRows rows of res (all when maxRows <= 0). It
// returns how many it sent and whether rows may remain. formats holds one
// code per column; nil means all text.
func (sess *session) streamRows(ctx context.Context, res Result, cols []Column, formats []int16, maxRows int) (n int, more bool, err error) {
	for ; maxRows <= 0 || n < maxRows; n++ {
		row, err := res.Next(ctx)
		if errors.Is(err, io.EOF) {
			return n, false, nil
		}
		if err != nil {
			return n, false, err
		}
		if len(row) != len(cols) {
			return n, false, fmt.Errorf("wire: statement returned a row of %d values for %d columns", len(row), len(cols))
		}
		msg, err := sess.dataRow(row, cols, formats)
		if err != nil {
			return n, false, err
		}
		sess.out.send(msg)
		if err := sess.out.error(); err != nil {
			return n, false, &sessionEnd{errConnLost}
		}
	}
	return n, true, nil
}

// dataRow encodes one row into the session's reusable buffers; the message
// is only valid until the next call, which is fine because send copies it.
func (sess *session) dataRow(row []any, cols []Column, formats []int16) (*pgproto3.DataRow, error) {
	buf := sess.rowBuf[:0]
	type span struct{ start, end int }
	spans := make([]span, len(row))
	for i, v := range row {
		format := int16(pgtype.TextFormatCode)
		if formats != nil {
			format = formats[i]
		}
		out, err := appendValue(sess.types, buf, cols[i].OID, format, v)
		if err != nil {
			return nil, fmt.Errorf("wire: encode column %q (type %d) from %T: %w", cols[i].Name, cols[i].OID, v, err)
		}
		if out == nil {
			spans[i] = span{-1, -1}
			continue
		}
		spans[i] = span{len(buf), len(out)}
		buf = out
	}
	sess.rowBuf = buf
	values := sess.values[:0]
	for _, sp := range spans {
		if sp.start < 0 {
			values = append(values, nil)
		} else {
			values = append(values, buf[sp.start:sp.end:sp.end])
		}
	}
	sess.values = values
	return &pgproto3.DataRow{Values: values}, nil
}

func rowDescription(cols []Column, formats []int16) *pgproto3.RowDescription {
	fields := make([]pgproto3.FieldDescription, len(cols))
	for i, c := range cols {
		fields[i] = pgproto3.FieldDescription{
			Name:         []byte(c.Name),
			DataTypeOID:  c.OID,
			DataTypeSize: c.TypeSize,
			TypeModifier: c.TypeMod,
		}
		if formats != nil {
			fields[i].Format = formats[i]
		}
	}
	return &pgproto3.RowDescription{Fields: fields}
}

// completedTag is the tag for executing a portal that already ran to
// completion: no rows for a query, the same tag for anything else, as
// Postgres answers.
func completedTag(tag string) string {
	if strings.HasPrefix(tag, "SELECT ") {
		return "SELECT 0"
	}
	return tag
}
