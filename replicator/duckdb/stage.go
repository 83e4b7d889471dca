package duckdb

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"sync"
	"sync/atomic"

	duckdb "github.com/duckdb/duckdb-go/v2"
)

// stageFunction is a table function that scans a batch held in Go memory.
// Merges read their batch through it instead of a staging table: a table
// created inside the long transaction a large source transaction needs
// would keep its data in DuckDB's transaction-local memory until commit,
// which makes memory grow with the transaction instead of the batch.
const stageFunction = "pgcdc_stage"

// staged is one batch: typed columns and rows of driver values.
type staged struct {
	cols []duckdb.ColumnInfo
	rows [][]driver.Value
}

var (
	stages  sync.Map // int64 -> *staged
	stageID atomic.Int64
)

// stage registers rows for the table function and returns the SQL table
// expression that reads them, and a release function.
func stage(cols []duckdb.ColumnInfo, rows [][]driver.Value) (string, func()) {
	id := stageID.Add(1)
	stages.Store(id, &staged{cols: cols, rows: rows})
	return fmt.Sprintf("%s(%d)", stageFunction, id), func() { stages.Delete(id) }
}

type stageSource struct {
	s *staged
	i int
}

func (s *stageSource) ColumnInfos() []duckdb.ColumnInfo { return s.s.cols }
func (s *stageSource) Cardinality() *duckdb.CardinalityInfo {
	return &duckdb.CardinalityInfo{Cardinality: uint(len(s.s.rows)), Exact: true}
}
func (s *stageSource) Init() {}

func (s *stageSource) FillRow(row duckdb.Row) (bool, error) {
	if s.i >= len(s.s.rows) {
		return false, nil
	}
	for j, v := range s.s.rows[s.i] {
		if !row.IsProjected(j) {
			continue
		}
		if err := row.SetRowValue(j, v); err != nil {
			return false, err
		}
	}
	s.i++
	return true, nil
}

// registerStage makes the table function known to the database.
func registerStage(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	bigint, err := duckdb.NewTypeInfo(duckdb.TYPE_BIGINT)
	if err != nil {
		return err
	}
	return duckdb.RegisterTableUDF(conn, stageFunction, duckdb.RowTableFunction{
		Config: duckdb.TableFunctionConfig{Arguments: []duckdb.TypeInfo{bigint}},
		BindArguments: func(_ map[string]any, args ...any) (duckdb.RowTableSource, error) {
			id, _ := args[0].(int64)
			v, ok := stages.Load(id)
			if !ok {
				return nil, fmt.Errorf("%s(%d): no such batch", stageFunction, id)
			}
			return &stageSource{s: v.(*staged)}, nil
		},
	})
}

// columnInfos builds column descriptions: names with their DuckDB types.
func columnInfos(specs ...colSpec) ([]duckdb.ColumnInfo, error) {
	out := make([]duckdb.ColumnInfo, len(specs))
	for i, s := range specs {
		ti, err := duckdb.NewTypeInfo(s.t)
		if err != nil {
			return nil, err
		}
		out[i] = duckdb.ColumnInfo{Name: s.name, T: ti}
	}
	return out, nil
}

type colSpec struct {
	name string
	t    duckdb.Type
}
