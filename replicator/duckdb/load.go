package duckdb

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

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

// loadSource feeds one LoadChunks statement. DuckDB calls FillChunk from
// several threads at once, each with its own loadCursor, so that
// converting, casting and storing rows run in parallel.
type loadSource struct {
	ctx   context.Context
	cols  []duckdb.ColumnInfo
	src   replica.ChunkSource
	convs columnConverters
	load  []loadColumn // per column: how the function hands it over
	tbl   *replica.Table
	rows  atomic.Int64
	mu    sync.Mutex
	err   error // from src, returned as is by LoadChunks
}

// loadCursor is one thread's place: the chunk it is loading.
type loadCursor struct {
	cur     *replica.Chunk
	pos     int // next row of cur
	done    bool
	scratch []byte // bytea's decoded bytes, reused
}

// loadThreads is how many DuckDB threads at most read the chunks.
const loadThreads = 4

func (s *loadSource) ColumnInfos() []duckdb.ColumnInfo     { return s.cols }
func (s *loadSource) Cardinality() *duckdb.CardinalityInfo { return nil }
func (s *loadSource) Init() duckdb.ParallelTableSourceInfo {
	return duckdb.ParallelTableSourceInfo{MaxThreads: loadThreads}
}
func (s *loadSource) NewLocalState() any { return &loadCursor{} }

// FillChunk fills DuckDB's vectors from the thread's current chunk, never
// mixing two chunks in one vector, so a vector holds at most what the
// engine's byte budget let one chunk hold.
func (s *loadSource) FillChunk(local any, out duckdb.DataChunk) error {
	lc := local.(*loadCursor)
	for !lc.done && (lc.cur == nil || lc.pos >= lc.cur.Rows()) {
		if lc.cur != nil {
			s.src.Release(lc.cur)
			lc.cur = nil
		}
		c, err := s.src.Next(s.ctx)
		switch {
		case errors.Is(err, replica.ErrNoMoreChunks):
			lc.done = true
		case err != nil:
			s.mu.Lock()
			if s.err == nil {
				s.err = err
			}
			s.mu.Unlock()
			lc.done = true
			return err
		default:
			lc.cur, lc.pos = c, 0
		}
	}
	if lc.done {
		return out.SetSize(0)
	}
	n := min(lc.cur.Rows()-lc.pos, duckdb.GetDataChunkCapacity())
	for j := range s.tbl.Columns {
		conv, col := s.convs[j], s.load[j]
		for i := range n {
			v := lc.cur.Value(lc.pos+i, j)
			var err error
			switch {
			case v == nil:
				err = out.SetValue(j, i, nil)
			case col.kind != loadText:
				if err = setLoaded(out, j, i, col, v, &lc.scratch); err != nil {
					return fmt.Errorf("%s column %s: %w", s.tbl.QualifiedSource(), s.tbl.Columns[j].Name, err)
				}
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
	lc.pos += n
	s.rows.Add(int64(n))
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
	return duckdb.RegisterTableUDF(conn, loadFunction, duckdb.ParallelChunkTableFunction{
		Config: duckdb.TableFunctionConfig{Arguments: []duckdb.TypeInfo{varchar}},
		BindArguments: func(_ map[string]any, args ...any) (duckdb.ParallelChunkTableSource, error) {
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
// load function. Values it parses in Go (load_parse.go) land exactly as the
// staged path's casts of the same text store them, and every other column
// goes through those casts, so values land exactly as Load would store them.
func (t *tx) LoadChunks(ctx context.Context, tbl *replica.Table, lsn uint64, next replica.ChunkSource) (int64, error) {
	if err := t.mergeAll(ctx); err != nil {
		return 0, err
	}
	load := make([]loadColumn, len(tbl.Columns))
	cols := make([]duckdb.ColumnInfo, len(tbl.Columns))
	for i, c := range tbl.Columns {
		load[i] = loadColumnFor(c)
		ti, err := load[i].typeInfo()
		if err != nil {
			return 0, err
		}
		cols[i] = duckdb.ColumnInfo{Name: fmt.Sprintf("c%d", i), T: ti}
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return 0, err
	}
	token := hex.EncodeToString(b[:])
	src := &loadSource{ctx: ctx, cols: cols, src: next, convs: converters(tbl), load: load, tbl: tbl}
	loads.Store(token, src)
	defer loads.Delete(token)

	names := make([]string, 0, len(tbl.Columns)+2)
	exprs := make([]string, 0, len(tbl.Columns)+2)
	for i, c := range tbl.Columns {
		names = append(names, ident(c.Name))
		exprs = append(exprs, loadExpr(c, load[i], fmt.Sprintf("c%d", i)))
	}
	names = append(names, ident(replica.LSNColumn))
	exprs = append(exprs, fmt.Sprintf("CAST(%d AS BIGINT)", int64(lsn)))
	var args []any
	if tbl.History {
		// Each row opens a version, valid from the snapshot's point.
		names = append(names, ident(replica.ValidFromColumn))
		exprs = append(exprs, "CAST(? AS TIMESTAMPTZ)")
		args = append(args, tbl.SnapshotTime)
	}
	q := fmt.Sprintf("INSERT INTO %s (%s) SELECT %s FROM %s('%s')", ident(tbl.Schema, tbl.Name),
		strings.Join(names, ", "), strings.Join(exprs, ", "), loadFunction, token)
	err := t.exec(ctx, q, args...)
	src.mu.Lock()
	serr := src.err
	src.mu.Unlock()
	if serr != nil {
		return src.rows.Load(), serr
	}
	if err != nil {
		return src.rows.Load(), fmt.Errorf("duckdb: loading %s: %w", tbl.Qualified(), err)
	}
	return src.rows.Load(), nil
}

// setParsed reads v, Postgres's text output of an integer, boolean or
// float of load kind kind, and writes it into row i of column j. strconv parses floats
// with correct rounding, as DuckDB's cast does, and reads "NaN",
// "Infinity" and "-Infinity" as Postgres prints them.
func setParsed(out duckdb.DataChunk, j, i int, kind loadKind, v []byte) error {
	s := unsafe.String(&v[0], len(v)) // not kept past this call
	switch kind {
	case loadInt2, loadInt4, loadInt8:
		bits := 64
		switch kind {
		case loadInt2:
			bits = 16
		case loadInt4:
			bits = 32
		}
		n, err := strconv.ParseInt(s, 10, bits)
		if err != nil {
			return err
		}
		switch kind {
		case loadInt2:
			return duckdb.SetChunkValue(out, j, i, int16(n))
		case loadInt4:
			return duckdb.SetChunkValue(out, j, i, int32(n))
		}
		return duckdb.SetChunkValue(out, j, i, n)
	case loadBool:
		switch s {
		case "t":
			return duckdb.SetChunkValue(out, j, i, true)
		case "f":
			return duckdb.SetChunkValue(out, j, i, false)
		}
		return fmt.Errorf("invalid boolean %q", s)
	case loadFloat4:
		f, err := strconv.ParseFloat(s, 32)
		if err != nil {
			return err
		}
		return duckdb.SetChunkValue(out, j, i, float32(f))
	case loadFloat8:
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return err
		}
		return duckdb.SetChunkValue(out, j, i, f)
	}
	return fmt.Errorf("no parser for load kind %d", kind)
}
