package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/sql"
)

// resumeReplication is resume_replication(): restart a paused slot.
func resumeReplication(ctx context.Context, env *Env, args sql.Args, _ func(string)) ([][]any, error) {
	slot, err := requiredString(args, "slot_name")
	if err != nil {
		return nil, err
	}
	st, err := env.Repl.Resume(ctx, slot)
	if err != nil {
		return nil, err
	}
	return [][]any{continuousRow(st)}, nil
}
