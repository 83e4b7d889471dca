package sql_test

import (
	"strings"
	"testing"

	pg_query "github.com/pganalyze/pg_query_go/v6"

	"github.com/pgcdc/pgcdc/sql"
)

// TestDestinationSQL checks the declarations against the catalog they are
// generated from, through the Postgres parser: the same parameters, types,
// defaults and result columns, and a comment for each. That the script runs
// in Postgres is checked end to end (cmd/pgcdc TestProxyDiscovery).
func TestDestinationSQL(t *testing.T) {
	c := mustCatalog(t)
	script := c.DestinationSQL()
	if _, err := pg_query.Parse(script); err != nil {
		t.Fatalf("the script does not parse: %v\n%s", err, script)
	}
	for _, fn := range c.Functions {
		create := fn.CreateSQL()
		if !strings.Contains(script, "CREATE OR REPLACE "+create+";") {
			t.Errorf("%s: no CREATE OR REPLACE", fn.Name)
		}
		if !strings.Contains(script, strings.TrimSpace(fn.Comment)) {
			t.Errorf("%s: no COMMENT", fn.Name)
		}
		tree, err := pg_query.Parse("CREATE " + create)
		if err != nil {
			t.Fatalf("%s: %v\n%s", fn.Name, err, create)
		}
		cf := tree.GetStmts()[0].GetStmt().GetCreateFunctionStmt()
		var params, result []string
		for _, n := range cf.GetParameters() {
			p := n.GetFunctionParameter()
			var tn []string
			for _, s := range p.GetArgType().GetNames() {
				tn = append(tn, s.GetString_().GetSval())
			}
			decl := p.GetName() + " " + strings.Join(tn, ".")
			if len(p.GetArgType().GetArrayBounds()) > 0 {
				decl += "[]"
			}
			if p.GetDefexpr() != nil {
				decl += " DEFAULT"
			}
			if p.GetMode() == pg_query.FunctionParameterMode_FUNC_PARAM_TABLE {
				result = append(result, decl)
			} else {
				params = append(params, decl)
			}
		}
		var wantParams, wantResult []string
		for _, p := range fn.Params {
			d := p.Name + " " + parserTypeName(p.Type)
			if p.HasDefault {
				d += " DEFAULT"
			}
			wantParams = append(wantParams, d)
		}
		for _, rc := range fn.Result {
			wantResult = append(wantResult, rc.Name+" "+parserTypeName(rc.Type))
		}
		if strings.Join(params, ", ") != strings.Join(wantParams, ", ") {
			t.Errorf("%s parameters:\n got %v\nwant %v", fn.Name, params, wantParams)
		}
		if strings.Join(result, ", ") != strings.Join(wantResult, ", ") {
			t.Errorf("%s result:\n got %v\nwant %v", fn.Name, result, wantResult)
		}
	}
}

// parserTypeName is how the Postgres grammar names a catalog type.
func parserTypeName(t sql.Type) string {
	name, array := strings.CutSuffix(t.Name, "[]")
	switch name {
	case "integer":
		name = "pg_catalog.int4"
	case "bigint":
		name = "pg_catalog.int8"
	case "boolean":
		name = "pg_catalog.bool"
	case "double precision":
		name = "pg_catalog.float8"
	case "timestamptz":
		name = "timestamptz"
	}
	if array {
		name += "[]"
	}
	return name
}
