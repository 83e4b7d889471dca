package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/sql"
)

// startReplication is start_replication(): replicate a slot continuously
// in the background.
func startReplication(ctx context.Context, env *Env, args sql.Args, _ func(string)) ([][]any, error) {
	o, err := replicateOptions(args)
	if err != nil {
		return nil, err
	}
	if err := env.Repl.Start(ctx, o); err != nil {
		return nil, err
	}
	for _, st := range env.Repl.ContinuousStatus(o.Slot) {
		return [][]any{continuousRow(st)}, nil
	}
	return nil, nil
}

// continuousRow is the row start_, stop_, pause_ and resume_replication
// return.
func continuousRow(st replicator.ContinuousStatus) []any {
	var lsn, lastErr any
	if st.CommittedLSN != 0 {
		lsn = replicator.FormatLSN(st.CommittedLSN)
	}
	if st.LastError != "" {
		lastErr = st.LastError
	}
	return []any{st.Slot, st.State, lsn, lastErr}
}
