package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/sql"
)

// replicationStatus is replication_status(): one row per slot.
func replicationStatus(ctx context.Context, env *Env, args sql.Args, _ func(string)) ([][]any, error) {
	st, err := env.Repl.Status(ctx, optString(args, "slot_name", ""))
	if err != nil {
		return nil, err
	}
	rows := make([][]any, len(st))
	for i, s := range st {
		var confirmed, lag, last, pub any
		if s.ConfirmedLSN != nil {
			confirmed = replicator.FormatLSN(*s.ConfirmedLSN)
			lag = *s.LagBytes
		}
		if s.LastReplicated != nil {
			last = *s.LastReplicated
		}
		if s.Publication != "" {
			pub = s.Publication
		}
		tables := tableNames(s.Tables)
		rows[i] = []any{s.Slot, pub, s.Active, confirmed, replicator.FormatLSN(s.CurrentLSN), lag, s.WALStatus, last, tables}
	}
	return rows, nil
}
