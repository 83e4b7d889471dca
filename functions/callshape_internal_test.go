package functions

import (
	"context"
	"io"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgcdc/pgcdc/sql"
	"github.com/pgcdc/pgcdc/wire"
)

// fakeDest records what reaches the destination.
type fakeDest struct {
	prepared []string
	args     [][]any
}

func (d *fakeDest) OpenSession(context.Context) (sql.Session, error) { return d, nil }
func (d *fakeDest) TxStatus() byte                                   { return 'I' }
func (d *fakeDest) Close() error                                     { return nil }
func (d *fakeDest) Prepare(_ context.Context, q string) (sql.Prepared, error) {
	d.prepared = append(d.prepared, q)
	return &fakePrepared{d: d}, nil
}

type fakePrepared struct{ d *fakeDest }

func (p *fakePrepared) ParamOIDs() []uint32 { return []uint32{pgtype.TextOID} }
func (p *fakePrepared) Fields() []sql.Field {
	return []sql.Field{{Name: "count", OID: pgtype.Int8OID, Size: 8, TypeMod: -1}}
}
func (p *fakePrepared) Close() error { return nil }
func (p *fakePrepared) Query(_ context.Context, args []any) (sql.Rows, error) {
	p.d.args = append(p.d.args, args)
	return &sliceResult{rows: [][]any{{int64(1)}}}, nil
}

type nopNotifier struct{}

func (nopNotifier) Notice(string, string)          {}
func (nopNotifier) ParameterStatus(string, string) {}

// TestEmbeddedCallRunsOnce: a statement that uses replication_status()'s
// rows runs the function once, at Execute, and hands the destination the
// statement with the rows in place of the call and its own parameter
// renumbered.
func TestEmbeddedCallRunsOnce(t *testing.T) {
	cat, err := sql.LoadCatalog()
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	saved := impls["replication_status"]
	impls["replication_status"] = func(_ context.Context, _ *Env, args sql.Args, _ func(string)) ([][]any, error) {
		calls++
		if args["slot_name"] != "mine" {
			t.Errorf("slot_name = %v", args["slot_name"])
		}
		return [][]any{{"mine", "pub", true, "0/1", "0/2", int64(1), "reserved", nil, []string{"shop.orders"}}}, nil
	}
	t.Cleanup(func() { impls["replication_status"] = saved })

	dest := &fakeDest{}
	r, err := NewRouter(&Env{Catalog: cat}, dest)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sess, err := r.NewSession(ctx, wire.SessionInfo{User: "u"})
	if err != nil {
		t.Fatal(err)
	}
	stmts, err := sess.Parse(ctx, "SELECT count(*) FROM replication_status($1) WHERE wal_status = $2", nil)
	if err != nil || len(stmts) != 1 {
		t.Fatalf("Parse: %v %v", stmts, err)
	}
	st := stmts[0]
	if calls != 0 {
		t.Fatal("Parse ran the function")
	}
	if got := st.ParamOIDs(); len(got) != 2 || got[0] != pgtype.TextOID || got[1] != pgtype.TextOID {
		t.Errorf("ParamOIDs = %v", got)
	}
	if cols := st.Columns(); len(cols) != 1 || cols[0].Name != "count" {
		t.Errorf("Columns = %v", cols)
	}
	res, err := st.Execute(ctx, []any{"mine", "reserved"}, nopNotifier{})
	if err != nil {
		t.Fatal(err)
	}
	if row, err := res.Next(ctx); err != nil || row[0] != int64(1) {
		t.Fatalf("Next: %v %v", row, err)
	}
	if _, err := res.Next(ctx); err != io.EOF {
		t.Fatalf("Next: %v", err)
	}
	if calls != 1 {
		t.Fatalf("the function ran %d times", calls)
	}
	last := dest.prepared[len(dest.prepared)-1]
	if !strings.Contains(last, "'mine'::text") || !strings.Contains(last, "wal_status = $1") || strings.Contains(last, "replication_status(") && !strings.Contains(last, ") replication_status(") {
		t.Errorf("the destination got %s", last)
	}
	if a := dest.args[len(dest.args)-1]; len(a) != 1 || a[0] != "reserved" {
		t.Errorf("the destination got args %v", a)
	}
}

func TestCopyOptionsResolveColumns(t *testing.T) {
	spec := sql.CopySpec{Table: "t", Columns: []sql.Field{{Name: "a"}, {Name: "b"}},
		Options: sql.CopyOptions{Format: sql.CopyCSV, Delimiter: ',', Quote: '"', Escape: '"', ForceQuote: []string{"b"}, ForceNull: []string{"a"}}}
	o, err := copyOptions(spec)
	if err != nil {
		t.Fatal(err)
	}
	if o.Format != wire.CopyCSV || len(o.ForceQuote) != 2 || o.ForceQuote[0] || !o.ForceQuote[1] || !o.ForceNull[0] || o.ForceNotNull != nil {
		t.Errorf("copyOptions = %+v", o)
	}
	spec.Options.ForceQuote = []string{"nope"}
	if _, err := copyOptions(spec); err == nil || !strings.Contains(err.Error(), "42P10") {
		t.Errorf("unknown FORCE_QUOTE column: %v", err)
	}
	spec.Options.ForceQuote, spec.Options.ForceQuoteAll = nil, true
	if o, _ := copyOptions(spec); len(o.ForceQuote) != 2 || !o.ForceQuote[0] || !o.ForceQuote[1] {
		t.Errorf("FORCE_QUOTE *: %+v", o.ForceQuote)
	}
}
