package functions

import (
	"context"

	"github.com/pgcdc/pgcdc/replicator"
	"github.com/pgcdc/pgcdc/sql"
)

// initReplication is init_replication(): publication, slot and snapshot.
func initReplication(ctx context.Context, env *Env, args sql.Args, notice func(string)) ([][]any, error) {
	var o replicator.InitOptions
	var err error
	if o.Slot, err = requiredString(args, "slot_name"); err != nil {
		return nil, err
	}
	if o.Publication, err = requiredString(args, "pub_name"); err != nil {
		return nil, err
	}
	if o.Schema, err = requiredString(args, "schema_name"); err != nil {
		return nil, err
	}
	if v, ok := args["table_names"].([]string); ok {
		o.Tables = v
		for _, t := range v {
			if t == "" {
				return nil, argError("table_names must not contain empty or NULL names")
			}
		}
	}
	o.Publish = optString(args, "publish", "")
	if args["publish"] != nil && o.Publish == "" {
		return nil, argError("publish must not be empty; pass NULL for the default")
	}
	o.PersistSnapshots = optBool(args, "persist_snapshots", false)
	o.Reset = optBool(args, "reset", false)
	o.Adopt = optBool(args, "adopt", false)
	o.Dataset = optString(args, "dataset_name", "")
	o.WriteDisposition = optString(args, "write_disposition", "")
	if args["write_disposition"] != nil && o.WriteDisposition == "" {
		return nil, argError("write_disposition must be 'merge', 'append' or 'scd2'; pass NULL to keep the slot's")
	}
	if o.TableOptions, err = tableOptions(args); err != nil {
		return nil, err
	}
	o.Progress = notice
	res, err := env.Repl.Init(ctx, o)
	if err != nil {
		return nil, err
	}
	rows := make([][]any, len(res))
	for i, r := range res {
		var n any
		if r.SnapshotRows != nil {
			n = *r.SnapshotRows
		}
		rows[i] = []any{r.Table, n, replicator.FormatLSN(r.ConsistentLSN), r.Slot, r.Publication, r.Dataset}
	}
	return rows, nil
}
