package replicator

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// The stream is two goroutines joined by a bounded channel. The reader owns
// every exchange with the source: it receives the pgoutput stream, answers
// keepalives, resolves Relation messages against the catalog, and turns the
// stream into events; it also sends the standby status, from the position
// the applier reports it has committed. The applier (stream.go) owns
// batches, destination transactions and the state. So decoding the next
// changes overlaps writing the last ones, and the walsender hears from us
// even while the destination is busy: a reader blocked on a full channel
// still sends status.

// eventKind says what an event is.
type eventKind byte

const (
	evBegin eventKind = iota
	evCommit
	evRelation
	evInsert
	evUpdate
	evDelete
	evTruncate
	// evKeepalive is sent in continuous mode, between transactions: the
	// source has sent every transaction that committed before end.
	evKeepalive
)

// event is one thing the reader hands the applier, in stream order.
type event struct {
	kind eventKind
	lsn  uint64 // where the message starts in the WAL
	// end is evBegin's final LSN and evCommit's transaction end LSN.
	end    uint64
	commit time.Time       // evBegin: the transaction's commit time
	rel    *sourceRelation // evRelation
	relID  uint32
	relIDs []uint32   // evTruncate
	old    []tupleCol // nil when the message has no old tuple
	new    []tupleCol
	size   int64 // memory the event's values hold
}

// chunk is a run of events sent together, so that the channel costs little
// per change. end marks the last one: the stream reached its end.
type chunk struct {
	events []event
	bytes  int64
	end    bool
}

const (
	// chunkEvents and chunkBytes bound a chunk; chunkDelay bounds how long
	// an event waits for company before the chunk goes out.
	chunkEvents = 512
	chunkBytes  = 1 << 20
	chunkDelay  = 5 * time.Millisecond
	// chunksInFlight is the channel's capacity: with the chunk being
	// applied and the one being filled, what the stream holds between the
	// halves is bounded by a few chunks.
	chunksInFlight = 4
)

// sourceRelation is a Relation message with what the catalog adds: each
// column's type, whether it is part of the merge key, its attnum and
// missing value, and the user-defined types the columns use.
type sourceRelation struct {
	msg     *pglogrepl.RelationMessage
	columns []replica.Column
	// fullRow: no catalog key, REPLICA IDENTITY FULL marks every column.
	fullRow bool
	// types are the user-defined types the columns use.
	types []replica.TypeDef
}

// reader is the source half of a stream.
type reader struct {
	r    *Replicator
	o    ReplicateOptions
	conn *pgx.Conn // catalog lookups on the source
	repl *pgconn.PgConn
	out  chan<- chunk
	// start is the stored position: transactions that end before it are
	// already in the destination.
	start uint64
	// end is the stop position: the stream ends when the source has sent
	// every transaction that committed before it.
	end uint64

	// committed is the position the applier has committed, which the
	// status reports; final is the applier's last position, for the
	// confirmation at the end.
	committed *atomic.Uint64
	final     <-chan uint64

	// continuous replaces the end with a stop policy: the stream runs
	// until stop is closed, and ends at the next transaction boundary.
	continuous bool
	stop       <-chan struct{}

	confirmed uint64 // sent to the source as flushed
	ceiling   uint64 // highest WAL position the source reported
	interval  time.Duration
	nextReply time.Time
	// readDeadline is the read deadline set on repl's connection.
	readDeadline time.Time
	inTx         bool
	skipTx       bool
	chunk        chunk
	chunkAt      time.Time
	typeCache    map[[2]int64]typeInfo
}

// run reads the stream until its end, hands the last chunk over, waits for
// the applier's final position and confirms the slot up to it.
func (rd *reader) run(ctx context.Context) error {
	defer close(rd.out)
	// Cancelling ctx interrupts a read in progress; see receive.
	defer context.AfterFunc(ctx, func() { rd.repl.Conn().SetReadDeadline(time.Now()) })()
	for {
		if rd.continuous && !rd.inTx && stopping(rd.stop) {
			rd.chunk.end = true
			if err := rd.flush(ctx); err != nil {
				return err
			}
			return rd.confirm(ctx)
		}
		if time.Now().After(rd.nextReply) {
			if err := rd.sendStatus(ctx, true); err != nil {
				return err
			}
			rd.nextReply = time.Now().Add(statusInterval)
		}
		deadline := rd.nextReply
		if len(rd.chunk.events) > 0 && rd.chunkAt.Add(chunkDelay).Before(deadline) {
			deadline = rd.chunkAt.Add(chunkDelay)
		}
		msg, err := rd.receive(ctx, deadline)
		if err != nil {
			if pgconn.Timeout(err) && ctx.Err() == nil {
				if err := rd.flush(ctx); err != nil {
					return err
				}
				continue
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return sourceError("receiving changes", err)
		}
		done := false
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			done, err = rd.copyData(ctx, m.Data)
		case *pgproto3.ErrorResponse:
			return sourceError("replication stream", pgconn.ErrorResponseToPgError(m))
		case *pgproto3.NoticeResponse, *pgproto3.ParameterStatus:
		default:
			return fmt.Errorf("source: unexpected message %T in replication stream", msg)
		}
		if err != nil {
			return err
		}
		if done {
			rd.chunk.end = true
			if err := rd.flush(ctx); err != nil {
				return err
			}
			return rd.confirm(ctx)
		}
		if len(rd.chunk.events) >= chunkEvents || rd.chunk.bytes >= chunkBytes {
			if err := rd.flush(ctx); err != nil {
				return err
			}
		}
	}
}

// receive reads the next message of the stream, waiting until deadline at
// most. The deadline is set on the connection, and only when it changes:
// a context per message, which pgconn watches for cancellation, took a
// third of the reader's CPU. run cancels a read through the same deadline.
func (rd *reader) receive(ctx context.Context, deadline time.Time) (pgproto3.BackendMessage, error) {
	if !deadline.Equal(rd.readDeadline) {
		if err := rd.repl.Conn().SetReadDeadline(deadline); err != nil {
			return nil, err
		}
		rd.readDeadline = deadline
	}
	// After the deadline is set: a cancellation from now on interrupts the
	// read, one before it is seen here.
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rd.repl.ReceiveMessage(context.Background())
}

// flush hands the chunk to the applier. While the applier is busy and the
// channel full, the source still gets its status, so that it does not drop
// the connection after wal_sender_timeout.
func (rd *reader) flush(ctx context.Context) error {
	if len(rd.chunk.events) == 0 && !rd.chunk.end {
		return nil
	}
	t := time.NewTicker(rd.interval)
	defer t.Stop()
	for {
		select {
		case rd.out <- rd.chunk:
			rd.chunk = chunk{}
			return nil
		case <-t.C:
			if err := rd.sendStatus(ctx, false); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (rd *reader) emit(ev event) {
	if len(rd.chunk.events) == 0 {
		rd.chunkAt = time.Now()
	}
	rd.chunk.events = append(rd.chunk.events, ev)
	rd.chunk.bytes += ev.size
}

// copyData handles one message of the stream; done says the stream has
// reached its end.
func (rd *reader) copyData(ctx context.Context, data []byte) (bool, error) {
	if len(data) == 0 {
		return false, fmt.Errorf("source: empty CopyData in replication stream")
	}
	switch data[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(data[1:])
		if err != nil {
			return false, fmt.Errorf("source: %w", err)
		}
		if !rd.continuous { // ten a second, for as long as it runs
			rd.r.log.Debug().Str("wal_end", FormatLSN(uint64(ka.ServerWALEnd))).Str("end", FormatLSN(rd.end)).Bool("in_tx", rd.inTx).Msg("keepalive")
		}
		rd.ceiling = max(rd.ceiling, uint64(ka.ServerWALEnd))
		// The keepalive's position is how far the source has decoded: every
		// transaction that committed before it has been sent to us.
		if !rd.inTx && uint64(ka.ServerWALEnd) >= rd.end {
			return true, nil
		}
		if rd.continuous && !rd.inTx {
			rd.emit(event{kind: evKeepalive, end: uint64(ka.ServerWALEnd)})
		}
		if ka.ReplyRequested {
			return false, rd.sendStatus(ctx, false)
		}
		return false, nil
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(data[1:])
		if err != nil {
			return false, fmt.Errorf("source: %w", err)
		}
		rd.ceiling = max(rd.ceiling, uint64(xld.ServerWALEnd))
		return rd.logical(ctx, uint64(xld.WALStart), xld.WALData)
	default:
		return false, fmt.Errorf("source: unknown replication message %q", data[0])
	}
}

func (rd *reader) logical(ctx context.Context, lsn uint64, data []byte) (bool, error) {
	if len(data) > 0 && (data[0] == 'I' || data[0] == 'U' || data[0] == 'D') {
		if rd.skipTx {
			return false, nil
		}
		c, err := decodeChange(data)
		if err != nil {
			return false, fmt.Errorf("source: cannot decode pgoutput message %q: %w", data[0], err)
		}
		// A change's message is about the size of the values it holds.
		ev := event{lsn: lsn, size: int64(len(data)) + rowOverhead, relID: c.relID, old: c.old, new: c.new}
		switch data[0] {
		case 'I':
			ev.kind = evInsert
		case 'U':
			ev.kind = evUpdate
		default:
			ev.kind = evDelete
		}
		rd.emit(ev)
		return false, nil
	}
	msg, err := pglogrepl.Parse(data)
	if err != nil {
		return false, fmt.Errorf("source: cannot decode pgoutput message %q: %w", data[0], err)
	}
	switch m := msg.(type) {
	case *pglogrepl.BeginMessage:
		if uint64(m.FinalLSN) > rd.end {
			// Commits arrive in order, so everything up to the end has been seen.
			return true, nil
		}
		rd.inTx = true
		// Already in the destination: applied before a crash that came
		// before the slot was confirmed.
		rd.skipTx = uint64(m.FinalLSN) < rd.start
		if !rd.skipTx {
			rd.emit(event{kind: evBegin, lsn: lsn, end: uint64(m.FinalLSN), commit: m.CommitTime})
		}
		return false, nil
	case *pglogrepl.CommitMessage:
		rd.inTx = false
		if rd.skipTx {
			rd.skipTx = false
			return false, nil
		}
		end := uint64(m.TransactionEndLSN)
		rd.emit(event{kind: evCommit, lsn: lsn, end: end})
		return end >= rd.end, nil
	case *pglogrepl.RelationMessage:
		// Described even inside a skipped transaction: later changes use it.
		rel, err := rd.relation(ctx, m)
		if err != nil {
			return false, err
		}
		rd.emit(event{kind: evRelation, lsn: lsn, rel: rel})
		return false, nil
	case *pglogrepl.TypeMessage:
		// Custom types are resolved from the catalog by OID when their
		// relation is described; the message's names add nothing.
		return false, nil
	case *pglogrepl.OriginMessage:
		// Changes that came from another node through replication carry
		// their origin; they are data like any other.
		return false, nil
	case *pglogrepl.LogicalDecodingMessage:
		// pg_logical_emit_message() payloads are not table data.
		return false, nil
	}
	if rd.skipTx {
		return false, nil
	}
	m, ok := msg.(*pglogrepl.TruncateMessage)
	if !ok {
		return false, fmt.Errorf("source: unexpected pgoutput message %T", msg)
	}
	rd.emit(event{kind: evTruncate, lsn: lsn, size: int64(len(data)) + rowOverhead, relIDs: m.RelationIDs})
	return false, nil
}

// relation describes a Relation message's columns from the catalog as it is
// now.
func (rd *reader) relation(ctx context.Context, m *pglogrepl.RelationMessage) (*sourceRelation, error) {
	catalog, err := relationColumns(ctx, rd.conn, m.RelationID)
	if err != nil {
		return nil, err
	}
	// The current primary key is the merge key when the stream still has
	// all its columns; otherwise the replica identity the stream marks.
	useCatalog := false
	for name, c := range catalog {
		if !c.Key {
			continue
		}
		useCatalog = true
		found := false
		for _, mc := range m.Columns {
			found = found || mc.Name == name
		}
		if !found {
			useCatalog = false
			break
		}
	}
	rel := &sourceRelation{msg: m, columns: make([]replica.Column, len(m.Columns)), fullRow: !useCatalog && m.ReplicaIdentity == 'f'}
	declared := make([]uint32, len(m.Columns))
	for i, c := range m.Columns {
		ti, err := rd.resolveType(ctx, c.DataType, c.TypeModifier)
		if err != nil {
			return nil, err
		}
		cc, known := catalog[c.Name]
		key := c.Flags&1 == 1
		if useCatalog {
			key = cc.Key
		}
		col := replica.Column{Name: c.Name, TypeOID: ti.OID, TypeMod: ti.TypeMod, TypeName: ti.Name, TypeSQL: ti.SQL, Key: key, ElemOID: ti.ElemOID}
		if known {
			col.Num, col.Missing, col.HasDefault, col.NotNull, col.Comment = cc.Num, cc.Missing, cc.HasDefault, cc.NotNull, cc.Comment
		}
		if ti.ElemOID != 0 {
			col.Dims = max(cc.Dims, 1)
		}
		rel.columns[i], declared[i] = col, c.DataType
	}
	rel.types, err = userTypes(ctx, rd.conn, declared)
	return rel, err
}

// resolveType caches type lookups: a stream names the same types over and
// over in its Relation messages.
func (rd *reader) resolveType(ctx context.Context, oid uint32, typmod int32) (typeInfo, error) {
	key := [2]int64{int64(oid), int64(typmod)}
	if ti, ok := rd.typeCache[key]; ok {
		return ti, nil
	}
	ti, err := resolveType(ctx, rd.conn, oid, typmod)
	if err != nil {
		return ti, err
	}
	if rd.typeCache == nil {
		rd.typeCache = map[[2]int64]typeInfo{}
	}
	rd.typeCache[key] = ti
	return ti, nil
}

// sendStatus reports the committed position (or, without flush_slot, the
// slot's original one) and optionally asks for a keepalive in reply.
func (rd *reader) sendStatus(ctx context.Context, reply bool) error {
	pos := rd.confirmed
	if c := rd.committed.Load(); rd.o.FlushSlot && c > pos {
		pos = c
	}
	limit := max(rd.ceiling, rd.end)
	if rd.continuous {
		limit = rd.ceiling
	}
	if pos > limit {
		// Checked before the stream starts (checkPosition); reaching this
		// means a bug, and confirming would tell the source to drop WAL it
		// has not even written.
		return fmt.Errorf("internal error: refusing to confirm slot %q at %s, past the source's WAL end %s", rd.o.Slot, FormatLSN(pos), FormatLSN(limit))
	}
	rd.confirmed = pos
	err := pglogrepl.SendStandbyStatusUpdate(ctx, rd.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(pos), WALFlushPosition: pglogrepl.LSN(pos), WALApplyPosition: pglogrepl.LSN(pos),
		ReplyRequested: reply})
	return sourceError("sending status", err)
}

// confirm waits for the applier's final position and, with flush_slot,
// until the source has taken the confirmation, so that a caller who sees
// replicate() return also sees the slot moved and its WAL free. Meanwhile
// the source keeps getting status.
func (rd *reader) confirm(ctx context.Context) error {
	// What follows reads the stream under its own context's deadline.
	if err := rd.repl.Conn().SetReadDeadline(time.Time{}); err != nil {
		return sourceError("confirming the slot", err)
	}
	rd.readDeadline = time.Time{}
	t := time.NewTicker(rd.interval)
	defer t.Stop()
	var final uint64
wait:
	for {
		select {
		case f, ok := <-rd.final:
			if !ok {
				return nil // the applier failed; its error is the call's
			}
			final = f
			break wait
		case <-t.C:
			if err := rd.sendStatus(ctx, false); err != nil {
				return err
			}
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if !rd.o.FlushSlot {
		return nil
	}
	deadline, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		if err := rd.sendStatus(deadline, true); err != nil {
			return err
		}
		if err := rd.awaitKeepalive(deadline); err != nil {
			return err
		}
		var confirmed *string
		if err := rd.conn.QueryRow(deadline, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1",
			rd.o.Slot).Scan(&confirmed); err != nil {
			return sourceError("confirming the slot", err)
		}
		if confirmed != nil {
			if lsn, err := parseLSN(*confirmed); err == nil && lsn >= final {
				return nil
			}
		}
	}
}

// awaitKeepalive reads the stream until the source sends a keepalive.
func (rd *reader) awaitKeepalive(ctx context.Context) error {
	for {
		msg, err := rd.repl.ReceiveMessage(ctx)
		if err != nil {
			return sourceError("confirming the slot", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) > 0 && m.Data[0] == pglogrepl.PrimaryKeepaliveMessageByteID {
				return nil
			}
		case *pgproto3.ErrorResponse:
			return sourceError("confirming the slot", pgconn.ErrorResponseToPgError(m))
		}
	}
}

// stopping reports whether stop is closed.
func stopping(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}
