package sql

import (
	_ "embed"
	"fmt"
	"strings"

	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// catalogSQL is the function catalog: CREATE FUNCTION statements, like an
// extension's install script, so the declaration is real SQL that the real
// parser reads.
//
//go:embed catalog.sql
var catalogSQL string

// Schema is the schema our functions live in. Calls may qualify a function
// with it; a call qualified with any other schema is not ours.
const Schema = "pgcdc"

// Catalog is the set of functions pgcdc serves. It is immutable once loaded
// and safe for concurrent use.
type Catalog struct {
	Functions []*Function
	byName    map[string]*Function
	// common and needles are what the pre-filter looks for; see
	// mentionsFunction.
	common  *needle
	needles []needle
}

// Function is one SQL function as declared in the catalog.
type Function struct {
	// Name is the unqualified, lower-case name.
	Name   string
	Params []Param
	// Result are the RETURNS TABLE columns, in order: the row a call yields.
	Result []ResultColumn
	// Comment is the COMMENT ON FUNCTION text, Markdown.
	Comment string
}

// Param is one input parameter.
type Param struct {
	Name string
	Type Type
	// Default is the DEFAULT value as Bind would return it (nil for NULL);
	// it is only meaningful when HasDefault.
	Default    any
	HasDefault bool

	info       *typeInfo
	defaultArg *expr // evaluated afresh by each Bind, so callers never share it
}

// ResultColumn is one RETURNS TABLE column.
type ResultColumn struct {
	Name string
	Type Type
}

// LoadCatalog reads the catalog embedded in the binary. An error means the
// embedded file is broken, which is a bug in the build, not in the input.
func LoadCatalog() (*Catalog, error) {
	return ParseCatalog(catalogSQL)
}

// ParseCatalog reads a catalog written like catalog.sql: CREATE FUNCTION
// pgcdc.<name>(...) RETURNS TABLE (...) LANGUAGE internal AS '<name>'
// statements and COMMENT ON FUNCTION statements. It exists so tests and
// tools can load a catalog other than the embedded one.
func ParseCatalog(src string) (*Catalog, error) {
	tree, err := pg_query.Parse(src)
	if err != nil {
		return nil, fmt.Errorf("catalog: %w", err)
	}
	c := &Catalog{byName: map[string]*Function{}}
	for _, raw := range tree.GetStmts() {
		switch {
		case raw.GetStmt().GetCreateFunctionStmt() != nil:
			fn, err := parseFunction(raw.GetStmt().GetCreateFunctionStmt())
			if err != nil {
				return nil, fmt.Errorf("catalog: %w", err)
			}
			if c.byName[fn.Name] != nil {
				return nil, fmt.Errorf("catalog: function %s declared twice", fn.Name)
			}
			c.Functions = append(c.Functions, fn)
			c.byName[fn.Name] = fn
		case raw.GetStmt().GetCommentStmt() != nil:
			cs := raw.GetStmt().GetCommentStmt()
			name, ok := qualifiedName(cs.GetObject().GetObjectWithArgs().GetObjname())
			fn := c.byName[name]
			if cs.GetObjtype() != pg_query.ObjectType_OBJECT_FUNCTION || !ok || fn == nil {
				return nil, fmt.Errorf("catalog: COMMENT must follow the CREATE FUNCTION it documents")
			}
			fn.Comment = cs.GetComment()
		default:
			return nil, fmt.Errorf("catalog: only CREATE FUNCTION and COMMENT ON FUNCTION are allowed")
		}
	}
	if len(c.Functions) == 0 {
		return nil, fmt.Errorf("catalog: no functions")
	}
	c.buildFilter()
	return c, nil
}

// qualifiedName accepts exactly pgcdc.<name>: the catalog is explicit about
// the schema so that it reads the same in psql as here.
func qualifiedName(names []*pg_query.Node) (string, bool) {
	if len(names) != 2 || names[0].GetString_().GetSval() != Schema {
		return "", false
	}
	name := names[1].GetString_().GetSval()
	return name, name != ""
}

func parseFunction(cf *pg_query.CreateFunctionStmt) (*Function, error) {
	name, ok := qualifiedName(cf.GetFuncname())
	if !ok || cf.GetIsProcedure() {
		return nil, fmt.Errorf("functions must be declared as CREATE FUNCTION %s.<name>", Schema)
	}
	fn := &Function{Name: name}
	if err := checkOptions(fn, cf.GetOptions()); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	for _, n := range cf.GetParameters() {
		fp := n.GetFunctionParameter()
		t, tname := resolveType(fp.GetArgType())
		if fp.GetName() == "" || t == nil {
			return nil, fmt.Errorf("%s: parameter %q: needs a name and a known type, got %s", name, fp.GetName(), tname)
		}
		switch fp.GetMode() {
		case pg_query.FunctionParameterMode_FUNC_PARAM_TABLE:
			fn.Result = append(fn.Result, ResultColumn{Name: fp.GetName(), Type: t.Type})
		case pg_query.FunctionParameterMode_FUNC_PARAM_IN, pg_query.FunctionParameterMode_FUNC_PARAM_DEFAULT:
			p, err := parseParam(fn, fp, t)
			if err != nil {
				return nil, err
			}
			if seen[p.Name] {
				return nil, fmt.Errorf("%s: parameter %s declared twice", name, p.Name)
			}
			seen[p.Name] = true
			if len(fn.Params) > 0 && fn.Params[len(fn.Params)-1].HasDefault && !p.HasDefault {
				return nil, fmt.Errorf("%s: parameter %s must have a default, like the ones before it", name, p.Name)
			}
			fn.Params = append(fn.Params, p)
		default:
			return nil, fmt.Errorf("%s: parameter %s: only IN parameters and RETURNS TABLE columns are supported", name, fp.GetName())
		}
	}
	if len(fn.Result) == 0 {
		return nil, fmt.Errorf("%s: must be declared RETURNS TABLE (...)", name)
	}
	return fn, nil
}

func checkOptions(fn *Function, opts []*pg_query.Node) error {
	var lang, as string
	for _, o := range opts {
		d := o.GetDefElem()
		switch d.GetDefname() {
		case "language":
			lang = d.GetArg().GetString_().GetSval()
		case "as":
			if items := d.GetArg().GetList().GetItems(); len(items) == 1 {
				as = items[0].GetString_().GetSval()
			}
		}
	}
	if lang != "internal" || as != fn.Name {
		return fmt.Errorf("%s: must be LANGUAGE internal AS '%s'", fn.Name, fn.Name)
	}
	return nil
}

func parseParam(fn *Function, fp *pg_query.FunctionParameter, t *typeInfo) (Param, error) {
	p := Param{Name: fp.GetName(), Type: t.Type, info: t}
	if t.class == classOther {
		return p, fmt.Errorf("%s: parameter %s: type %s cannot be an argument", fn.Name, p.Name, t.Name)
	}
	if fp.GetDefexpr() == nil {
		return p, nil
	}
	e, perr := compile(fp.GetDefexpr())
	if perr == nil && e.hasParams() {
		perr = newError(codeFeatureNotSupported, "parameters are not allowed")
	}
	if perr == nil {
		p.defaultArg = e
		p.Default, perr = p.bind(e, nil)
	}
	if perr == errNotConstant {
		return p, fmt.Errorf("%s: parameter %s: DEFAULT must be a constant", fn.Name, p.Name)
	}
	if perr != nil {
		return p, fmt.Errorf("%s: parameter %s: DEFAULT: %s", fn.Name, p.Name, perr.Message)
	}
	p.HasDefault = true
	return p, nil
}

// Lookup finds a function by name, unqualified or qualified with Schema,
// ignoring ASCII case as Postgres does for unquoted identifiers. It returns
// nil for names that are not ours.
func (c *Catalog) Lookup(name string) *Function {
	if len(name) > len(Schema)+1 && equalFoldASCII(name[:len(Schema)+1], Schema+".") {
		name = name[len(Schema)+1:]
	}
	if fn := c.byName[name]; fn != nil {
		return fn
	}
	for _, fn := range c.Functions {
		if equalFoldASCII(fn.Name, name) {
			return fn
		}
	}
	return nil
}

// Signature is the function as Postgres' \df would show its arguments:
// "pgcdc.replicate(slot_name text, ..., delete_mode text DEFAULT 'hard')".
func (f *Function) Signature() string {
	var b strings.Builder
	b.WriteString(Schema + "." + f.Name + "(")
	for i, p := range f.Params {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(p.Name + " " + p.Type.Name)
		if p.HasDefault {
			b.WriteString(" DEFAULT " + sqlLiteral(p.Default))
		}
	}
	b.WriteString(")")
	return b.String()
}

func (f *Function) param(name string) int {
	for i, p := range f.Params {
		if p.Name == name {
			return i
		}
	}
	return -1
}

func equalFoldASCII(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		if lowerASCII(a[i]) != lowerASCII(b[i]) {
			return false
		}
	}
	return true
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}
