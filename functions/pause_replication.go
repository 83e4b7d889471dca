package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/sql"
)

// pauseReplication is pause_replication(): stop reading a continuous slot
// until resume_replication().
func pauseReplication(ctx context.Context, env *Env, args sql.Args, _ func(string)) ([][]any, error) {
	slot, err := requiredString(args, "slot_name")
	if err != nil {
		return nil, err
	}
	st, err := env.Repl.Pause(ctx, slot)
	if err != nil {
		return nil, err
	}
	return [][]any{continuousRow(st)}, nil
}
