package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/replicator/replica"
	"github.com/pgcdc/pgcdc/sql"
)

// resyncTable is resync_table(): rebuild one table's replica from a new
// snapshot while the slot goes on.
func resyncTable(ctx context.Context, env *Env, args sql.Args, notice func(string)) ([][]any, error) {
	slot, err := requiredString(args, "slot_name")
	if err != nil {
		return nil, err
	}
	table, err := requiredString(args, "table_name")
	if err != nil {
		return nil, err
	}
	res, err := env.Repl.ResyncTable(ctx, slot, table, notice)
	if err != nil {
		return nil, err
	}
	return [][]any{{tableNames([]replica.TableName{res.Table})[0], res.SnapshotRows, replicator.FormatLSN(res.LSN)}}, nil
}
