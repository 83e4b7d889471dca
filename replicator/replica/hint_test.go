package replica_test

import (
	"testing"

	"github.com/pgcdc/pgcdc/replicator/replica"
)

func TestRefine(t *testing.T) {
	f := false
	cases := []struct {
		name string
		hint replica.TypeHint
		col  replica.Column
		want replica.TypeHint
		err  bool
	}{
		// dlt's pg_replication docstring: {"another_col_y": {"precision": 32}}.
		{"bigint to 32 bits", replica.TypeHint{Precision: 32}, replica.Column{Name: "y", TypeOID: 20}, replica.TypeHint{DataType: "bigint", Precision: 32}, false},
		{"numeric keeps its scale", replica.TypeHint{Precision: 16}, replica.Column{Name: "a", TypeOID: 1700, TypeMod: (12<<16 | 2) + 4}, replica.TypeHint{DataType: "decimal", Precision: 16, Scale: 2}, false},
		{"timestamptz loses its zone", replica.TypeHint{Timezone: &f}, replica.Column{Name: "t", TypeOID: 1184}, replica.TypeHint{DataType: "timestamp", Timezone: &f}, false},
		{"varchar length", replica.TypeHint{Precision: 5}, replica.Column{Name: "v", TypeOID: 1043, TypeMod: 14}, replica.TypeHint{DataType: "text", Precision: 5}, false},
		{"named type stays", replica.TypeHint{DataType: "double"}, replica.Column{Name: "u", TypeOID: 2950}, replica.TypeHint{DataType: "double"}, false},
		{"uuid has no dlt type", replica.TypeHint{Precision: 3}, replica.Column{Name: "u", TypeOID: 2950, TypeName: "uuid"}, replica.TypeHint{}, true},
		{"bits beyond 128", replica.TypeHint{Precision: 256}, replica.Column{Name: "y", TypeOID: 20}, replica.TypeHint{}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.hint.Refine(c.col)
			if (err != nil) != c.err {
				t.Fatalf("err = %v, want error %v", err, c.err)
			}
			if err == nil && !got.Equal(c.want) {
				t.Fatalf("got %+v, want %+v", got, c.want)
			}
		})
	}
}

func TestHintEqualComparesTimezoneValues(t *testing.T) {
	a, b := false, false
	if !(replica.TypeHint{DataType: "timestamp", Timezone: &a}).Equal(replica.TypeHint{DataType: "timestamp", Timezone: &b}) {
		t.Fatal("equal hints with distinct timezone pointers compare unequal")
	}
	tr := true
	if (replica.TypeHint{DataType: "timestamp", Timezone: &a}).Equal(replica.TypeHint{DataType: "timestamp", Timezone: &tr}) {
		t.Fatal("timezone false equals true")
	}
}
