package replicator

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// identify reads the source's identity over a replication connection:
// IDENTIFY_SYSTEM works for any login with the REPLICATION attribute, where
// pg_control_system() needs more.
func identify(ctx context.Context, repl *pgconn.PgConn) (replica.SourceIdentity, error) {
	res, err := pglogrepl.IdentifySystem(ctx, repl)
	if err != nil {
		return replica.SourceIdentity{}, sourceError("identifying the source", err)
	}
	return replica.SourceIdentity{SystemID: res.SystemID, Timeline: res.Timeline, Database: res.DBName}, nil
}

// checkIdentity compares the identity a slot's state recorded with the
// source's. The same system on a later timeline is accepted only when the
// stored position lies before the point where the recorded timeline ended:
// the new timeline then holds every change the replica has, and nothing
// else up to there. A replica ahead of the fork holds changes the new
// timeline never had, so it cannot continue.
//
// It returns the identity to record (the source's) and whether it differs
// from the stored one.
func checkIdentity(ctx context.Context, repl *pgconn.PgConn, st replica.State, src replica.SourceIdentity) (replica.SourceIdentity, bool, error) {
	stored := st.Source
	if !stored.Known() {
		// State written before identities were recorded: trust the first
		// source that is consistent with the stored position (checked by
		// the caller), and record it.
		return src, true, nil
	}
	hint := fmt.Sprintf("The replica of slot %q cannot continue from this source. To start over with a new snapshot, run init_replication(..., reset => true).", st.Slot)
	mismatch := func(what string) error {
		return &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("the source is not the one slot %q was replicated from: %s", st.Slot, what),
			Hint:    hint}
	}
	if stored.SystemID != src.SystemID {
		return src, false, mismatch(fmt.Sprintf("its system identifier is %s, the replica's state was made from %s", src.SystemID, stored.SystemID))
	}
	if stored.Database != src.Database {
		return src, false, mismatch(fmt.Sprintf("it is database %q, the replica's state was made from database %q", src.Database, stored.Database))
	}
	if stored.Timeline == src.Timeline {
		return src, false, nil
	}
	if src.Timeline < stored.Timeline {
		return src, false, mismatch(fmt.Sprintf("it is on timeline %d, the replica has reached timeline %d", src.Timeline, stored.Timeline))
	}
	hist, err := pglogrepl.TimelineHistory(ctx, repl, src.Timeline)
	if err != nil {
		return src, false, sourceError("reading the timeline history", err)
	}
	if why, err := laterTimeline(st, src.Timeline, hist.Content); err != nil || why != "" {
		if err == nil {
			err = mismatch(why)
		}
		return src, false, err
	}
	return src, true, nil
}

// laterTimeline decides whether the replica of st can continue on timeline
// tli, whose history file is history; it returns why not, or "".
func laterTimeline(st replica.State, tli int32, history []byte) (string, error) {
	end, ok, err := timelineEnd(history, st.Source.Timeline)
	if err != nil {
		return "", err
	}
	if !ok {
		return fmt.Sprintf("timeline %d does not descend from the replica's timeline %d", tli, st.Source.Timeline), nil
	}
	if st.LSN > end {
		return fmt.Sprintf("timeline %d left timeline %d at %s, but the replica holds changes up to %s that the new timeline does not have",
			tli, st.Source.Timeline, FormatLSN(end), FormatLSN(st.LSN)), nil
	}
	return "", nil
}

// timelineEnd finds where timeline tli ended in a timeline history file,
// whose lines are "parent-tli <tab> switch-point <tab> reason".
func timelineEnd(history []byte, tli int32) (uint64, bool, error) {
	sc := bufio.NewScanner(bytes.NewReader(history))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		parent, err := strconv.ParseInt(f[0], 10, 32)
		if err != nil || int32(parent) != tli {
			continue
		}
		lsn, err := parseLSN(f[1])
		if err != nil {
			return 0, false, fmt.Errorf("source: timeline history: %w", err)
		}
		return lsn, true, nil
	}
	return 0, false, sc.Err()
}

// checkPosition verifies a stored position against the source before any
// change is read, so that a damaged or foreign state is an error and never
// a reason to skip changes or confirm the slot where the source has no WAL.
func checkPosition(st replica.State, slot slotInfo, walEnd uint64) error {
	hint := fmt.Sprintf("The replica of slot %q cannot continue exactly. To start over with a new snapshot, run init_replication(..., reset => true).", st.Slot)
	fail := func(format string, args ...any) error {
		return &pgconn.PgError{Severity: "ERROR", Code: CodePrerequisite,
			Message: fmt.Sprintf("replication state of slot %q does not match the source: ", st.Slot) + fmt.Sprintf(format, args...),
			Hint:    hint}
	}
	if st.LSN > walEnd {
		return fail("the replica claims changes up to %s, beyond the source's WAL end %s", FormatLSN(st.LSN), FormatLSN(walEnd))
	}
	if st.SlotLSN > st.LSN {
		return fail("the replica's position %s is before the slot's starting point %s", FormatLSN(st.LSN), FormatLSN(st.SlotLSN))
	}
	if slot.ConfirmedLSN > st.LSN {
		return fail("the slot was confirmed up to %s by another consumer, past the replica's position %s; the changes in between are gone from the slot",
			FormatLSN(slot.ConfirmedLSN), FormatLSN(st.LSN))
	}
	return nil
}
