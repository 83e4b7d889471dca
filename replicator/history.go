package replicator

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// History mode (write_disposition 'scd2'): the batch keeps one change per
// key and source transaction (replica/history.go) and the destination turns
// them into versions. What the stream adds is small: each change carries
// its transaction's commit LSN, and a TRUNCATE closes the current versions
// instead of emptying the table.

// checkHistoryKey refuses a table of a history slot that has no key (a
// table that joined a schema published whole, or lost its key): nothing
// would tell the versions of one row from another's.
func checkHistoryKey(st replica.State, t *replica.Table) error {
	if st.WriteDisposition != replica.DispositionSCD2 || t.History {
		return nil
	}
	return &pgconn.PgError{Severity: "ERROR", Code: CodeFeatureNotSupp,
		Message: fmt.Sprintf("table %s has no primary key or replica identity index, so slot %q (write_disposition 'scd2') cannot keep its history", t.QualifiedSource(), st.Slot),
		Hint:    "Add a primary key to the source table, or drop it from the publication."}
}

// closeVersions applies a TRUNCATE to a history table: the changes held
// for it come first (they are history too), then every current version
// ends at the truncating transaction.
func (s *stream) closeVersions(t *replica.Table) error {
	if err := s.openTx(); err != nil {
		return err
	}
	if b, ok := s.batches[t]; ok {
		if err := s.apply(t, b); err != nil {
			return err
		}
	}
	h, ok := s.tx.(replica.HistoryTx)
	if !ok {
		return Errorf(CodeFeatureNotSupp, "the destination cannot keep history (write_disposition 'scd2')")
	}
	if err := h.CloseVersions(s.ctx, t, s.txFinal, s.commitTime); err != nil {
		return fmt.Errorf("destination: truncating %s: %w", t.Qualified(), err)
	}
	return nil
}
