package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/replicator/replica"
	"github.com/pgcdc/pgcdc/sql"
)

// replicationStatus is replication_status(): one row per slot, each
// followed by one row per table of the slot with table_detail.
func replicationStatus(ctx context.Context, env *Env, args sql.Args, _ func(string)) ([][]any, error) {
	st, err := env.Repl.Status(ctx, optString(args, "slot_name", ""))
	if err != nil {
		return nil, err
	}
	detail := optBool(args, "table_detail", false)
	var rows [][]any
	for _, s := range st {
		var confirmed, lag, last, pub, lagSeconds, commitAt any
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
		if s.LagSeconds != nil {
			lagSeconds = *s.LagSeconds
		}
		if s.LastCommitAt != nil {
			commitAt = *s.LastCommitAt
		}
		tables := tableNames(s.Tables)
		rows = append(rows, []any{s.Slot, pub, s.Active, confirmed, replicator.FormatLSN(s.CurrentLSN), lag, s.WALStatus, last, tables,
			nil, s.State, lagSeconds, commitAt, nullIfEmpty(s.LastError), s.Inserts, s.Updates, s.Deletes, s.Truncates})
		if !detail {
			continue
		}
		for _, t := range s.TableDetail {
			name := tableNames([]replica.TableName{t.Table})[0]
			rows = append(rows, []any{s.Slot, pub, nil, nil, nil, lag, nil, nil, nil,
				name, t.State, lagSeconds, nil, nullIfEmpty(t.LastError), t.Inserts, t.Updates, t.Deletes, t.Truncates})
		}
	}
	return rows, nil
}
