package duckdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"sync"

	duckdb "github.com/duckdb/duckdb-go/v2"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

// loadFunction is a table function that streams a snapshot table's rows
// from the engine into one INSERT ... SELECT: DuckDB pulls a vector's worth
// of rows at a time from chunks the engine fills while DuckDB casts and
// stores the previous ones. It replaces staging per batch of rows (one
// statement, one Row and one driver value per value) for the snapshot.
//
// Its argument is a random token, not a counter: the function is visible
// to client sessions too, and a client that could name a load in progress
// could take rows from it.
const loadFunction = "pgcdc_load"

var _ replica.ChunkLoader = (*tx)(nil)

var loads sync.Map // token -> *loadSource

// loadSource feeds one LoadChunks statement.
type loadSource struct {
	ctx   context.Context
	cols  []duckdb.ColumnInfo
	next  replica.ChunkSource
	convs columnConverters
	tbl   *replica.Table
	cur   *replica.Chunk
	pos   int // next row of cur
	rows  int64
	done  bool
	err   error // from next, returned as is by LoadChunks
}

func (s *loadSource) ColumnInfos() []duckdb.ColumnInfo     { return s.cols }
func (s *loadSource) Cardinality() *duckdb.CardinalityInfo { return nil }
func (s *loadSource) Init()                                {}

// FillChunk fills DuckDB's vectors from the current chunk, never mixing two
// chunks in one vector, so a vector holds at most what the engine's byte
// budget let one chunk hold.
func (s *loadSource) FillChunk(out duckdb.DataChunk) error {
	for !s.done && (s.cur == nil || s.pos >= s.cur.Rows()) {
		c, err := s.next(s.ctx)
		switch {
		case errors.Is(err, replica.ErrNoMoreChunks):
			s.done, s.cur = true, nil
		case err != nil:
			s.err = err
			return err
		default:
			s.cur, s.pos = c, 0
		}
	}
	if s.done {
		return out.SetSize(0)
	}
	n := min(s.cur.Rows()-s.pos, duckdb.GetDataChunkCapacity())
	for j := range s.tbl.Columns {
		conv := s.convs[j]
		for i := range n {
			v := s.cur.Value(s.pos+i, j)
			var err error
			switch {
			case v == nil:
				err = out.SetValue(j, i, nil)
			case conv != nil:
				if v, err = conv(v); err != nil {
					return fmt.Errorf("%s column %s: %w", s.tbl.QualifiedSource(), s.tbl.Columns[j].Name, err)
				}
				err = duckdb.SetChunkValue(out, j, i, v)
			default:
				err = duckdb.SetChunkValue(out, j, i, v)
			}
			if err != nil {
				return err
			}
		}
	}
	s.pos += n
	s.rows += int64(n)
	return out.SetSize(n)
}

// registerLoad makes the load function known to the database.
func registerLoad(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	varchar, err := duckdb.NewTypeInfo(duckdb.TYPE_VARCHAR)
	if err != nil {
		return err
	}
	return duckdb.RegisterTableUDF(conn, loadFunction, duckdb.ChunkTableFunction{
		Config: duckdb.TableFunctionConfig{Arguments: []duckdb.TypeInfo{varchar}},
		BindArguments: func(_ map[string]any, args ...any) (duckdb.ChunkTableSource, error) {
			token, _ := args[0].(string)
			v, ok := loads.Load(token)
			if !ok {
				return nil, fmt.Errorf("%s: no such load", loadFunction)
			}
			return v.(*loadSource), nil
		},
	})
}

// LoadChunks implements replica.ChunkLoader: one INSERT ... SELECT from the
// load function, with the same casts as the staged path, so values land
// exactly as Load would store them.
func (t *tx) LoadChunks(ctx context.Context, tbl *replica.Table, lsn uint64, next replica.ChunkSource) (int64, error) {
	specs := make([]colSpec, len(tbl.Columns))
	for i := range tbl.Columns {
		specs[i] = colSpec{fmt.Sprintf("c%d", i), duckdb.TYPE_VARCHAR}
	}
	cols, err := columnInfos(specs...)
	if err != nil {
		return 0, err
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	token := hex.EncodeToString(b[:])
	src := &loadSource{ctx: ctx, cols: cols, next: next, convs: converters(tbl), tbl: tbl}
	loads.Store(token, src)
	defer loads.Delete(token)

	names := make([]string, 0, len(tbl.Columns)+2)
	exprs := make([]string, 0, len(tbl.Columns)+2)
	for i, c := range tbl.Columns {
		names = append(names, ident(c.Name))
		exprs = append(exprs, castExpr(c, fmt.Sprintf("c%d", i)))
	}
	names = append(names, ident(replica.LSNColumn))
	exprs = append(exprs, fmt.Sprintf("CAST(%d AS BIGINT)", int64(lsn)))
	q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s('%s')", ident(tbl.Schema, tbl.Name),
		strings.Join(names, ", "), strings.Join(exprs, ", "), loadFunction, token)
	err = t.exec(ctx, q)
	if src.err != nil {
		return src.rows, src.err
	}
	if err != nil {
		return src.rows, fmt.Errorf("duckdb: loading %s: %w", tbl.Qualified(), err)
	}
	return src.rows, nil
}
