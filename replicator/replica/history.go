package replica

import (
	"encoding/binary"
	"time"
)

// History batches (write_disposition 'scd2') keep one change per key and
// source transaction, in stream order: an Upsert opens a version (closing
// the key's current one), a Delete closes it. Several changes to one row in
// one transaction collapse into one, so a transaction yields at most one
// version per key. Each change's LSN is its transaction's commit LSN and
// CommitTime its commit time: the version's _pg_lsn and _pg_valid_from, or
// the closed version's _pg_valid_to_lsn and _pg_valid_to.

// historyKey is the batch index of a key in the current transaction.
func (b *Batch) historyKey(key string) string {
	return string(binary.BigEndian.AppendUint64([]byte(key), b.CommitLSN))
}

// historyPut records kind for r's key in the current transaction,
// replacing what the transaction did to it before.
func (b *Batch) historyPut(r Row, kind ChangeKind, commit time.Time, lookup [][]byte) {
	if b.latest == nil {
		b.latest = map[string]int{}
	}
	key := b.keyOf(r)
	if kind == Delete {
		r = Row{Values: r.Values} // a delete's row is only its key
	}
	c := Change{Kind: kind, Row: r, LSN: b.CommitLSN, CommitTime: commit, Lookup: lookup}
	hk := b.historyKey(key)
	if i, ok := b.index[hk]; ok {
		b.Changes[i] = c
		return
	}
	b.index[hk] = len(b.Changes)
	b.latest[key] = len(b.Changes)
	b.Changes = append(b.Changes, c)
}

// historyUpdate records an update: the new version, and the end of the old
// key's when the key changed. Values left out as unchanged TOAST come from
// the row's previous version: the latest one in this batch, else the
// destination's current version of the old key (Lookup).
func (b *Batch) historyUpdate(old *Row, r Row, commit time.Time) {
	newKey := b.keyOf(r)
	srcKey := newKey
	var lookup [][]byte
	if old != nil {
		if oldKey := b.keyOf(*old); oldKey != newKey {
			srcKey = oldKey
			lookup = b.keyValues(*old)
		}
	}
	if r.HasUnchanged() {
		if i, ok := b.latest[srcKey]; ok && b.Changes[i].Kind == Upsert {
			prev := b.Changes[i]
			for j, u := range r.Unchanged {
				if !u || prev.Row.Unchanged != nil && prev.Row.Unchanged[j] {
					continue // still unknown here: the destination has it
				}
				r.Values[j], r.Unchanged[j] = prev.Row.Values[j], false
			}
			// What is still unknown is in the destination, under the key
			// the previous version looked it up by.
			lookup = prev.Lookup
			if lookup == nil && srcKey != newKey {
				lookup = b.keyValues(prev.Row)
			}
		}
	}
	if !r.HasUnchanged() {
		r.Unchanged, lookup = nil, nil
	}
	if srcKey != newKey {
		b.historyPut(*old, Delete, commit, nil)
	}
	b.historyPut(r, Upsert, commit, lookup)
}
