package wire

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/jackc/pgx/v5/pgtype"
)

// The extended query protocol: Parse, Bind, Describe, Execute and Close
// answer nothing on success until the client sends Sync or Flush; the first
// error makes the session discard everything up to the next Sync
// (skipToSync), so a pipelined batch fails as a unit.

// preparedStatement is what Parse creates. stmt is nil for an empty query.
type preparedStatement struct {
	name      string
	stmt      Statement
	paramOIDs []uint32
	cols      []Column
}

// portal is a bound statement. It executes on its first Execute, not at
// Bind, so that a Bind+Describe that is never executed costs nothing; the
// Result is then kept open so a later Execute resumes it.
type portal struct {
	stmt    *preparedStatement
	params  []any
	formats []int16 // one per column
	cols    []Column
	result  Result
	ctx     context.Context // lives as long as result
	cancel  context.CancelCauseFunc
	done    bool
	tag     string
	resumed bool // an Execute with a row limit stopped short of the end
}

func (p *portal) close() {
	if p.result != nil {
		p.result.Close()
		p.result = nil
	}
	if p.cancel != nil {
		p.cancel(context.Canceled)
	}
}

// extendedFail reports err and starts discarding until Sync.
func (sess *session) extendedFail(ctx context.Context, err error) error {
	sess.skipToSync = true
	return sess.fail(ctx, err)
}

func (sess *session) parse(m *pgproto3.Parse) error {
	if m.Name != "" {
		if _, ok := sess.statements[m.Name]; ok {
			return sess.extendedFail(context.Background(), errorf(codeDuplicatePreparedStmt, "prepared statement \"%s\" already exists", m.Name))
		}
	}
	ctx, end := sess.beginStatement(sess.ctx)
	stmts, err := sess.handler.Parse(ctx, m.Query, m.ParameterOIDs)
	end()
	if err != nil {
		return sess.extendedFail(ctx, err)
	}
	if len(stmts) > 1 {
		return sess.extendedFail(context.Background(), errorf(codeSyntaxError, "cannot insert multiple commands into a prepared statement"))
	}
	ps := &preparedStatement{name: m.Name, paramOIDs: m.ParameterOIDs}
	if len(stmts) == 1 {
		ps.stmt = stmts[0]
		ps.paramOIDs = ps.stmt.ParamOIDs()
		ps.cols = columnDefaults(ps.stmt.Columns())
	}
	sess.statements[m.Name] = ps
	sess.out.send(&pgproto3.ParseComplete{})
	return nil
}

func (sess *session) bind(m *pgproto3.Bind) error {
	ps, ok := sess.statements[m.PreparedStatement]
	if !ok {
		return sess.extendedFail(context.Background(), undefinedStatement(m.PreparedStatement))
	}
	if m.DestinationPortal == "" {
		sess.closePortal("")
	} else if _, ok := sess.portals[m.DestinationPortal]; ok {
		return sess.extendedFail(context.Background(), errorf(codeDuplicateCursor, "portal \"%s\" already exists", m.DestinationPortal))
	}

	if len(m.Parameters) != len(ps.paramOIDs) {
		return sess.extendedFail(context.Background(), errorf(codeProtocolViolation, "bind message supplies %d parameters, but prepared statement \"%s\" requires %d", len(m.Parameters), ps.name, len(ps.paramOIDs)))
	}
	paramFormats, err := expandFormats(m.ParameterFormatCodes, len(m.Parameters))
	if err != nil {
		return sess.extendedFail(context.Background(), errorf(codeProtocolViolation, "bind message has %d parameter formats but %d parameters", len(m.ParameterFormatCodes), len(m.Parameters)))
	}
	params := make([]any, len(m.Parameters))
	for i, raw := range m.Parameters {
		v, err := DecodeParam(sess.types, ps.paramOIDs[i], paramFormats[i], raw)
		if err != nil {
			return sess.extendedFail(context.Background(), paramError(i, err))
		}
		params[i] = v
	}

	var formats []int16
	if ps.cols != nil {
		formats, err = expandFormats(m.ResultFormatCodes, len(ps.cols))
		if err != nil {
			return sess.extendedFail(context.Background(), errorf(codeProtocolViolation, "bind message has %d result formats but query has %d columns", len(m.ResultFormatCodes), len(ps.cols)))
		}
		for i, f := range formats {
			switch {
			case f != pgtype.TextFormatCode && f != pgtype.BinaryFormatCode:
				return sess.extendedFail(context.Background(), errorf(codeInvalidParameterValue, "unsupported format code: %d", f))
			case f == pgtype.BinaryFormatCode && !hasBinaryForm(sess.types, ps.cols[i].OID):
				return sess.extendedFail(context.Background(), errorf(codeUndefinedFunction, "no binary output function available for type %d", ps.cols[i].OID))
			}
		}
	}
	sess.portals[m.DestinationPortal] = &portal{stmt: ps, params: params, formats: formats, cols: ps.cols}
	sess.out.send(&pgproto3.BindComplete{})
	return nil
}

// expandFormats applies the protocol's format-code shorthand: none means all
// text, one applies to all, otherwise one each.
func expandFormats(codes []int16, n int) ([]int16, error) {
	out := make([]int16, n)
	switch len(codes) {
	case 0:
	case 1:
		for i := range out {
			out[i] = codes[0]
		}
	case n:
		copy(out, codes)
	default:
		return nil, fmt.Errorf("%d format codes for %d values", len(codes), n)
	}
	return out, nil
}

func undefinedStatement(name string) error {
	if name == "" {
		return errorf(codeInvalidSQLStatement, "unnamed prepared statement does not exist")
	}
	return errorf(codeInvalidSQLStatement, "prepared statement \"%s\" does not exist", name)
}

func undefinedPortal(name string) error {
	if name == "" {
		return errorf(codeInvalidCursorName, "unnamed portal does not exist")
	}
	return errorf(codeInvalidCursorName, "portal \"%s\" does not exist", name)
}

func (sess *session) describe(m *pgproto3.Describe) error {
	switch m.ObjectType {
	case 'S':
		ps, ok := sess.statements[m.Name]
		if !ok {
			return sess.extendedFail(context.Background(), undefinedStatement(m.Name))
		}
		sess.out.send(&pgproto3.ParameterDescription{ParameterOIDs: ps.paramOIDs})
		if ps.cols != nil {
			sess.out.send(rowDescription(ps.cols, nil))
		} else {
			sess.out.send(&pgproto3.NoData{})
		}
	case 'P':
		p, ok := sess.portals[m.Name]
		if !ok {
			return sess.extendedFail(context.Background(), undefinedPortal(m.Name))
		}
		if p.cols != nil {
			sess.out.send(rowDescription(p.cols, p.formats))
		} else {
			sess.out.send(&pgproto3.NoData{})
		}
	default:
		return sess.protocolViolation(fmt.Errorf("invalid DESCRIBE message subtype %d", m.ObjectType))
	}
	return nil
}

func (sess *session) execute(m *pgproto3.Execute) error {
	p, ok := sess.portals[m.Portal]
	if !ok {
		return sess.extendedFail(context.Background(), undefinedPortal(m.Portal))
	}
	if p.stmt.stmt == nil {
		sess.out.send(&pgproto3.EmptyQueryResponse{})
		return nil
	}
	if p.done {
		sess.out.send(&pgproto3.CommandComplete{CommandTag: []byte(completedTag(p.tag))})
		return nil
	}
	if p.result == nil {
		p.ctx, p.cancel = context.WithCancelCause(sess.ctx)
	}
	sess.setRunning(p.cancel)
	n, more, err := sess.runPortal(p, int(m.MaxRows))
	sess.setRunning(nil)
	if err != nil {
		ferr := sess.extendedFail(p.ctx, err)
		// A failed portal cannot be resumed; Postgres drops it as well.
		sess.closePortal(m.Portal)
		return ferr
	}
	if more {
		p.resumed = true
		sess.out.send(&pgproto3.PortalSuspended{})
		return nil
	}
	p.tag = p.result.Tag()
	p.done = true
	p.close()
	tag := p.tag
	if p.resumed && strings.HasPrefix(tag, "SELECT ") {
		// Postgres counts the rows of the Execute that completed the
		// portal, not of the whole result.
		tag = "SELECT " + strconv.Itoa(n)
	}
	sess.out.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	return nil
}

func (sess *session) runPortal(p *portal, maxRows int) (int, bool, error) {
	if p.result == nil {
		res, err := execute(p.ctx, p.stmt.stmt, p.params, notifier{sess})
		if err != nil {
			return 0, false, err
		}
		p.result = res
		// COPY runs to its end whatever the row limit, as in Postgres.
		if handled, err := sess.runCopy(p.ctx, res); handled {
			return 0, false, err
		}
	}
	return sess.streamRows(p.ctx, p.result, p.cols, p.formats, maxRows)
}

func (sess *session) closeObject(m *pgproto3.Close) error {
	switch m.ObjectType {
	case 'S':
		if ps, ok := sess.statements[m.Name]; ok {
			delete(sess.statements, m.Name)
			// Closing a statement closes the portals made from it.
			for name, p := range sess.portals {
				if p.stmt == ps {
					sess.closePortal(name)
				}
			}
		}
	case 'P':
		sess.closePortal(m.Name)
	default:
		return sess.protocolViolation(fmt.Errorf("invalid CLOSE message subtype %d", m.ObjectType))
	}
	sess.out.send(&pgproto3.CloseComplete{})
	return nil
}

func (sess *session) closePortal(name string) {
	if p, ok := sess.portals[name]; ok {
		p.close()
		delete(sess.portals, name)
	}
}

// sync ends an extended-protocol batch; the unnamed portal never outlives
// its batch.
func (sess *session) sync() error {
	sess.skipToSync = false
	sess.closePortal("")
	sess.readyForQuery()
	return nil
}

// closePortalsOutsideTx closes every portal once no transaction block is
// open: portals end with the transaction they ran in, as in Postgres.
func (sess *session) closePortalsOutsideTx(tx byte) {
	if tx == 'T' {
		return
	}
	for _, name := range slices.Collect(maps.Keys(sess.portals)) {
		sess.closePortal(name)
	}
}
