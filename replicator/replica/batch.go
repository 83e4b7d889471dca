package replica

import (
	"encoding/binary"
	"time"
)

// ChangeKind says what a collapsed change does to its key.
type ChangeKind byte

const (
	// Upsert replaces (or creates) the row with the change's key.
	Upsert ChangeKind = 'U'
	// Delete removes the row with the change's key.
	Delete ChangeKind = 'D'
	// SoftDelete keeps the row and sets _pg_deleted_ts.
	SoftDelete ChangeKind = 'S'
	// Append adds the row; used for tables without a merge key or
	// insert-only publications, and Count copies of it for FullRow tables.
	Append ChangeKind = 'A'
	// Remove deletes Count rows equal to Row from a FullRow table.
	Remove ChangeKind = 'R'
)

// Change is the net effect of one or more source changes on one key.
type Change struct {
	Kind ChangeKind
	Row  Row
	LSN  uint64
	// CommitTime is the source commit time, the deletion time for SoftDelete.
	CommitTime time.Time
	// Deleted marks an Upsert whose row was then soft-deleted in the same
	// batch: it lands with _pg_deleted_ts set to CommitTime.
	Deleted bool
	// Count is how many equal rows an Append, Remove or SoftDelete on a
	// FullRow table adds, removes or marks deleted.
	Count int
	// Lookup is the key of the destination row that supplies the values the
	// source left out as unchanged TOAST; nil means Row's own key.
	Lookup [][]byte
}

// Batch collects the changes to one table, collapsed per key so that the
// destination applies each key once with set-based statements. Memory is
// bounded by the caller, which flushes after a fixed number of changes.
type Batch struct {
	Table   *Table
	Changes []Change
	index   map[string]int // key -> position in Changes
	keys    []int

	Inserts, Updates, Deletes int64
	// Bytes is the memory the changes added to the batch hold, as the
	// stream counted it.
	Bytes int64
	// MinLSN and MaxLSN span the changes in the batch.
	MinLSN, MaxLSN uint64
	// CommitLSN is the commit LSN of the source transaction the next
	// changes belong to; History tables collapse changes per key and
	// transaction, and the caller sets it before each change.
	CommitLSN uint64
	raw       int
	latest    map[string]int // History: key -> its latest change
}

// NewBatch starts an empty batch for t.
func NewBatch(t *Table) *Batch {
	return &Batch{Table: t, index: map[string]int{}, keys: t.KeyIndexes()}
}

// Len is the number of source changes added, before collapsing.
func (b *Batch) Len() int { return b.raw }

// merges reports whether changes are merged on a key.
func (b *Batch) merges() bool {
	return !b.Table.AppendOnly && !b.Table.History && len(b.keys) > 0
}

func (b *Batch) note(lsn uint64) {
	b.raw++
	if b.MinLSN == 0 || lsn < b.MinLSN {
		b.MinLSN = lsn
	}
	if lsn > b.MaxLSN {
		b.MaxLSN = lsn
	}
}

func (b *Batch) keyOf(r Row) string {
	var buf []byte
	for _, i := range b.keys {
		v := r.Values[i]
		if v == nil {
			buf = binary.BigEndian.AppendUint32(buf, 0xFFFFFFFF)
			continue
		}
		buf = binary.BigEndian.AppendUint32(buf, uint32(len(v)))
		buf = append(buf, v...)
	}
	return string(buf)
}

func (b *Batch) keyValues(r Row) [][]byte {
	kv := make([][]byte, len(b.keys))
	for j, i := range b.keys {
		kv[j] = r.Values[i]
	}
	return kv
}

func (b *Batch) put(key string, c Change) {
	if i, ok := b.index[key]; ok {
		b.Changes[i] = c
		return
	}
	b.index[key] = len(b.Changes)
	b.Changes = append(b.Changes, c)
}

// count adds n to the net number of rows equal to r (FullRow tables).
func (b *Batch) count(r Row, n int, lsn uint64, commit time.Time) {
	key := b.keyOf(r)
	i, ok := b.index[key]
	if !ok {
		i = len(b.Changes)
		b.index[key] = i
		b.Changes = append(b.Changes, Change{Row: r})
	}
	c := &b.Changes[i]
	c.Count += n
	c.LSN, c.CommitTime = lsn, commit
	c.Kind = Append
	if c.Count < 0 {
		c.Kind = Remove
	}
}

// softCount records a soft delete of one row equal to r (FullRow tables).
// It is kept apart from the net count, so that an update's removal stays a
// hard removal and a soft delete never cancels an insert.
func (b *Batch) softCount(r Row, lsn uint64, commit time.Time) {
	key := "\x00soft" + b.keyOf(r)
	i, ok := b.index[key]
	if !ok {
		i = len(b.Changes)
		b.index[key] = i
		b.Changes = append(b.Changes, Change{Kind: SoftDelete, Row: r})
	}
	c := &b.Changes[i]
	c.Count++
	c.LSN, c.CommitTime = lsn, commit
}

// Insert adds an inserted row.
func (b *Batch) Insert(r Row, lsn uint64, commit time.Time) {
	b.note(lsn)
	b.Inserts++
	if b.Table.History {
		b.historyPut(r, Upsert, commit, nil)
		return
	}
	if b.Table.FullRow && !b.Table.AppendOnly {
		b.count(r, 1, lsn, commit)
		return
	}
	if !b.merges() {
		b.Changes = append(b.Changes, Change{Kind: Append, Row: r, LSN: lsn, CommitTime: commit})
		return
	}
	b.put(b.keyOf(r), Change{Kind: Upsert, Row: r, LSN: lsn, CommitTime: commit})
}

// Update adds an updated row. old is the old key or old row when the source
// sent one (the key changed, or REPLICA IDENTITY FULL), nil otherwise.
func (b *Batch) Update(old *Row, r Row, lsn uint64, commit time.Time) {
	b.note(lsn)
	b.Updates++
	if b.Table.History {
		b.historyUpdate(old, r, commit)
		return
	}
	if !b.merges() {
		b.Changes = append(b.Changes, Change{Kind: Append, Row: r, LSN: lsn, CommitTime: commit})
		return
	}
	if b.Table.FullRow && old != nil {
		// The old row is complete (TOAST values included), so it also
		// supplies the new row's unchanged values.
		for j, u := range r.Unchanged {
			if u {
				r.Values[j], r.Unchanged[j] = old.Values[j], false
			}
		}
		r.Unchanged = nil
		b.count(*old, -1, lsn, commit)
		b.count(r, 1, lsn, commit)
		return
	}
	newKey := b.keyOf(r)
	c := Change{Kind: Upsert, Row: r, LSN: lsn, CommitTime: commit}
	// The values left out as unchanged come from the row as it was: the
	// old key's row, in this batch or else in the destination.
	srcKey := newKey
	if old != nil {
		if oldKey := b.keyOf(*old); oldKey != newKey {
			srcKey = oldKey
			c.Lookup = b.keyValues(*old)
		}
	}
	if r.HasUnchanged() {
		if i, ok := b.index[srcKey]; ok && b.Changes[i].Kind == Upsert {
			prev := b.Changes[i]
			for j, u := range r.Unchanged {
				if !u {
					continue
				}
				if prev.Row.Unchanged != nil && prev.Row.Unchanged[j] {
					continue // still unknown here: keep asking the destination
				}
				r.Values[j] = prev.Row.Values[j]
				r.Unchanged[j] = false
			}
			c.Row = r
			c.Lookup = prev.Lookup
			if c.Lookup == nil && srcKey != newKey {
				c.Lookup = b.keyValues(prev.Row)
			}
		}
		if !c.Row.HasUnchanged() {
			c.Row.Unchanged = nil
			c.Lookup = nil
		}
	} else {
		c.Lookup = nil
	}
	if srcKey != newKey {
		b.put(srcKey, Change{Kind: Delete, Row: *old, LSN: lsn, CommitTime: commit})
	}
	b.put(newKey, c)
}

// Delete adds a deleted row (its key, or the whole old row). soft keeps
// the row in the destination and marks it deleted.
func (b *Batch) Delete(old Row, lsn uint64, commit time.Time, soft bool) {
	b.note(lsn)
	b.Deletes++
	if b.Table.History {
		b.historyPut(old, Delete, commit, nil)
		return
	}
	if !b.merges() {
		return // nothing identifies the row; the caller refuses such tables
	}
	if b.Table.FullRow {
		if soft {
			b.softCount(old, lsn, commit)
		} else {
			b.count(old, -1, lsn, commit)
		}
		return
	}
	key := b.keyOf(old)
	if !soft {
		b.put(key, Change{Kind: Delete, Row: old, LSN: lsn, CommitTime: commit})
		return
	}
	// A soft delete keeps the row: if this batch holds it, keep those values.
	if i, ok := b.index[key]; ok && b.Changes[i].Kind == Upsert {
		c := b.Changes[i]
		c.Deleted, c.LSN, c.CommitTime = true, lsn, commit
		b.Changes[i] = c
		return
	}
	b.put(key, Change{Kind: SoftDelete, Row: old, LSN: lsn, CommitTime: commit})
}
