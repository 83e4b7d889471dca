package sql

import (
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// This file is the constant evaluator shared by call arguments and catalog
// DEFAULTs. It follows Postgres' typing: an untyped literal ('...', or a $n
// value, whose type is whatever parameter it fills) is read by the target
// type's input rules, while a typed value (a cast, a number, ARRAY[...]) must
// already have a compatible type. Explicit casts allow more conversions than
// the implicit conversion from an argument to its parameter.

// maxParams is the protocol's limit on $n (Bind counts parameters in 16
// bits); it also bounds what ParamOIDs allocates for a hostile "$99999999".
const maxParams = math.MaxUint16

// value is an evaluated expression. NULL is a flag, not a nil v, so that a
// NULL still has a type like any other value.
type value struct {
	class class
	typ   string // type name for messages: "unknown", "integer", ...
	null  bool
	v     any // string, []string, int64, bool or a decoded JSON value
}

func unknownValue(s string) value { return value{class: classUnknown, typ: "unknown", v: s} }

func intValue(i int64) value {
	typ := "integer"
	if i < math.MinInt32 || i > math.MaxInt32 {
		typ = "bigint"
	}
	return value{class: classInteger, typ: typ, v: i}
}

// numberValue types a numeric literal the way Postgres does: an integer when
// it fits in bigint, numeric otherwise.
func numberValue(s string) value {
	if i, err := parseIntLiteral(s); err == nil {
		return intValue(i)
	}
	return value{class: classNumeric, typ: "numeric", v: s}
}

// parseIntLiteral reads Postgres 16+ integer syntax: decimal, 0x/0o/0b
// prefixes, and single underscores between digits. strconv's base-0 parsing
// is close but reads a leading zero as octal, which Postgres does not.
func parseIntLiteral(s string) (int64, error) {
	sign, body := "", s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		sign, body = body[:1], body[1:]
	}
	base := 10
	if len(body) > 2 && body[0] == '0' {
		switch body[1] {
		case 'x', 'X':
			base = 16
		case 'o', 'O':
			base = 8
		case 'b', 'B':
			base = 2
		}
		if base != 10 {
			body = body[2:]
		}
	}
	if strings.Contains(body, "_") {
		// A prefix may be followed by an underscore ("0x_1F"), digits may not
		// start with one.
		if (base == 10 && strings.HasPrefix(body, "_")) || strings.HasSuffix(body, "_") || strings.Contains(body, "__") {
			return 0, strconv.ErrSyntax
		}
		body = strings.ReplaceAll(body, "_", "")
	}
	if body == "" || body[0] == '+' || body[0] == '-' {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseInt(sign+body, base, 64)
}

type exprOp uint8

const (
	opConst exprOp = iota
	opParam
	opCast
	opArray
)

// expr is a compiled argument. Classify compiles once; Bind evaluates with
// the $n values, so a prepared Call is never mutated.
type expr struct {
	op    exprOp
	val   value     // opConst
	param int       // opParam, 1-based
	to    *typeInfo // opCast
	args  []*expr   // opCast: its operand; opArray: the elements
}

// errNotConstant is returned by compile for anything that would need a
// query to evaluate; the caller names the function in the message.
var errNotConstant = &pgconn.PgError{Code: codeFeatureNotSupported}

func compile(n *pg_query.Node) (*expr, *pgconn.PgError) {
	switch {
	case n.GetAConst() != nil:
		return &expr{op: opConst, val: constValue(n.GetAConst())}, nil
	case n.GetTypeCast() != nil:
		tc := n.GetTypeCast()
		if tc.GetArg() == nil || tc.GetTypeName() == nil {
			return nil, errNotConstant
		}
		arg, err := compile(tc.GetArg())
		if err != nil {
			return nil, err
		}
		t, name := resolveType(tc.GetTypeName())
		if t == nil || t.class == classOther {
			return nil, newError(codeFeatureNotSupported, "cannot cast to type %s: arguments are text, text[], boolean, integer, bigint or jsonb", name)
		}
		return &expr{op: opCast, to: t, args: []*expr{arg}}, nil
	case n.GetAArrayExpr() != nil:
		e := &expr{op: opArray}
		for _, el := range n.GetAArrayExpr().GetElements() {
			c, err := compile(el)
			if err != nil {
				return nil, err
			}
			if c.op == opArray {
				return nil, newError(codeFeatureNotSupported, "multidimensional arrays are not supported")
			}
			e.args = append(e.args, c)
		}
		return e, nil
	case n.GetParamRef() != nil:
		num := int(n.GetParamRef().GetNumber())
		if num < 1 || num > maxParams {
			return nil, newError(codeUndefinedParameter, "there is no parameter $%d", num)
		}
		return &expr{op: opParam, param: num}, nil
	case n.GetAExpr() != nil:
		// "-1" arrives folded into the constant, but "- 1.5" and "+1" are
		// operator expressions; fold the unary signs on numbers only.
		ae := n.GetAExpr()
		if ae.GetKind() != pg_query.A_Expr_Kind_AEXPR_OP || ae.GetLexpr() != nil || len(ae.GetName()) != 1 {
			return nil, errNotConstant
		}
		op := ae.GetName()[0].GetString_().GetSval()
		if op != "-" && op != "+" {
			return nil, errNotConstant
		}
		operand, err := compile(ae.GetRexpr())
		if err != nil {
			return nil, err
		}
		if operand.op != opConst || operand.val.null ||
			(operand.val.class != classInteger && operand.val.class != classNumeric) {
			return nil, errNotConstant
		}
		if op == "+" {
			return operand, nil
		}
		return &expr{op: opConst, val: negate(operand.val)}, nil
	}
	return nil, errNotConstant
}

func negate(v value) value {
	switch x := v.v.(type) {
	case int64:
		if x == math.MinInt64 {
			return numberValue("9223372036854775808")
		}
		return intValue(-x)
	case string:
		if strings.HasPrefix(x, "-") {
			return numberValue(x[1:])
		}
		return numberValue("-" + x)
	}
	return v
}

func constValue(c *pg_query.A_Const) value {
	switch {
	case c.GetIsnull():
		return value{class: classUnknown, typ: "unknown", null: true}
	case c.GetIval() != nil:
		return intValue(int64(c.GetIval().GetIval()))
	case c.GetFval() != nil:
		return numberValue(c.GetFval().GetFval())
	case c.GetBoolval() != nil:
		return value{class: classBoolean, typ: "boolean", v: c.GetBoolval().GetBoolval()}
	case c.GetSval() != nil:
		return unknownValue(c.GetSval().GetSval())
	case c.GetBsval() != nil:
		return value{class: classOther, typ: "bit", v: c.GetBsval().GetBsval()}
	}
	// The parser always sets one of the above; anything new in a later
	// version is a type we cannot convert.
	return value{class: classOther, typ: "constant"}
}

// visitParams reports every $n under e with the type it is expected to have:
// the parameter's type at the top, a cast's type under a cast, the element
// type inside ARRAY[...].
func (e *expr) visitParams(want *typeInfo, visit func(num int, t *typeInfo)) {
	switch e.op {
	case opParam:
		visit(e.param, want)
	case opCast:
		e.args[0].visitParams(e.to, visit)
	case opArray:
		elem := typeText
		if want != nil && want.elem != nil {
			elem = want.elem
		}
		for _, a := range e.args {
			a.visitParams(elem, visit)
		}
	}
}

func (e *expr) hasParams() bool {
	found := false
	e.visitParams(nil, func(int, *typeInfo) { found = true })
	return found
}

func (e *expr) eval(params []any) (value, *pgconn.PgError) {
	switch e.op {
	case opParam:
		return paramValue(params[e.param-1])
	case opCast:
		if e.args[0].op == opArray && e.to.class == classTextArray {
			return e.args[0].evalArray(params, true)
		}
		v, err := e.args[0].eval(params)
		if err != nil {
			return value{}, err
		}
		return coerce(v, e.to, true)
	case opArray:
		return e.evalArray(params, false)
	}
	return e.val, nil
}

func (e *expr) evalArray(params []any, explicit bool) (value, *pgconn.PgError) {
	out := make([]string, 0, len(e.args))
	for _, a := range e.args {
		v, err := a.eval(params)
		if err != nil {
			return value{}, err
		}
		v, err = coerce(v, typeText, explicit)
		if err != nil {
			return value{}, err
		}
		if v.null {
			return value{}, errNullElement()
		}
		out = append(out, v.v.(string))
	}
	return value{class: classTextArray, typ: "text[]", v: out}, nil
}

func errNullElement() *pgconn.PgError {
	return newError(codeNullValueNotAllowed, "array elements must not be NULL")
}

// paramValue turns a $n value, as the wire layer decoded it, into a value.
// Strings are untyped: the client sent the parameter's text form, and the
// parameter's type reads it.
func paramValue(p any) (value, *pgconn.PgError) {
	switch v := p.(type) {
	case nil:
		return value{class: classUnknown, typ: "unknown", null: true}, nil
	case string:
		return unknownValue(v), nil
	case []byte:
		return unknownValue(string(v)), nil
	case json.RawMessage:
		return unknownValue(string(v)), nil
	case bool:
		return value{class: classBoolean, typ: "boolean", v: v}, nil
	case int:
		return intValue(int64(v)), nil
	case int8:
		return intValue(int64(v)), nil
	case int16:
		return intValue(int64(v)), nil
	case int32:
		return intValue(int64(v)), nil
	case int64:
		return intValue(v), nil
	case uint8:
		return intValue(int64(v)), nil
	case uint16:
		return intValue(int64(v)), nil
	case uint32:
		return intValue(int64(v)), nil
	case uint:
		return uintValue(uint64(v)), nil
	case uint64:
		return uintValue(v), nil
	case float32:
		return floatValue(float64(v)), nil
	case float64:
		return floatValue(v), nil
	case json.Number:
		return numberValue(string(v)), nil
	case []string:
		return value{class: classTextArray, typ: "text[]", v: append([]string(nil), v...)}, nil
	case []*string:
		out := make([]string, len(v))
		for i, s := range v {
			if s == nil {
				return value{}, errNullElement()
			}
			out[i] = *s
		}
		return value{class: classTextArray, typ: "text[]", v: out}, nil
	case []any:
		out := make([]string, len(v))
		for i, el := range v {
			switch s := el.(type) {
			case nil:
				return value{}, errNullElement()
			case string:
				out[i] = s
			default:
				return value{}, newError(codeDatatypeMismatch, "expected text array elements, got %T", el)
			}
		}
		return value{class: classTextArray, typ: "text[]", v: out}, nil
	case map[string]any:
		return value{class: classJSON, typ: "jsonb", v: v}, nil
	}
	return value{}, newError(codeDatatypeMismatch, "unsupported parameter value of Go type %T", p)
}

func uintValue(u uint64) value {
	if u > math.MaxInt64 {
		return value{class: classNumeric, typ: "numeric", v: strconv.FormatUint(u, 10)}
	}
	return intValue(int64(u))
}

func floatValue(f float64) value {
	if f == math.Trunc(f) && f >= math.MinInt64 && f < math.MaxInt64 {
		return intValue(int64(f))
	}
	return value{class: classNumeric, typ: "numeric", v: strconv.FormatFloat(f, 'g', -1, 64)}
}

// coerce converts v to t: implicitly when v is an argument for a parameter of
// type t, explicitly when it is the operand of a cast to t.
func coerce(v value, t *typeInfo, explicit bool) (value, *pgconn.PgError) {
	if v.null {
		return value{class: t.class, typ: t.Name, null: true}, nil
	}
	out := value{class: t.class, typ: t.Name}
	var err *pgconn.PgError
	switch t.class {
	case classText:
		out.v, err = toText(v, t, explicit)
	case classTextArray:
		out.v, err = toTextArray(v, t, explicit)
	case classInteger:
		out.v, err = toInteger(v, t, explicit)
	case classBoolean:
		out.v, err = toBoolean(v, t, explicit)
	case classJSON:
		out.v, err = toJSON(v, t, explicit)
	default:
		err = mismatch(v, t, explicit)
	}
	if err != nil {
		return value{}, err
	}
	return out, nil
}

func mismatch(v value, t *typeInfo, explicit bool) *pgconn.PgError {
	if explicit {
		return newError(codeCannotCoerce, "cannot cast type %s to %s", v.typ, t.Name)
	}
	return newError(codeDatatypeMismatch, "expected %s, got %s", t.Name, v.typ)
}

func invalidInput(t *typeInfo, s string) *pgconn.PgError {
	return newError(codeInvalidTextRepr, "invalid input syntax for type %s: %q", t.Name, s)
}

func toText(v value, t *typeInfo, explicit bool) (string, *pgconn.PgError) {
	switch v.class {
	case classUnknown, classText:
		return v.v.(string), nil
	}
	if !explicit {
		return "", mismatch(v, t, explicit)
	}
	switch v.class {
	case classInteger:
		return strconv.FormatInt(v.v.(int64), 10), nil
	case classNumeric:
		return v.v.(string), nil
	case classBoolean:
		return strconv.FormatBool(v.v.(bool)), nil
	case classTextArray:
		return FormatTextArray(v.v.([]string)), nil
	case classJSON:
		b, err := json.Marshal(v.v)
		if err != nil {
			return "", newError(codeInvalidParameterValue, "cannot format JSON: %v", err)
		}
		return string(b), nil
	}
	return "", mismatch(v, t, explicit)
}

func toTextArray(v value, t *typeInfo, explicit bool) ([]string, *pgconn.PgError) {
	switch v.class {
	case classTextArray:
		return v.v.([]string), nil
	case classUnknown, classText:
		s := v.v.(string)
		// Users write table_names => 'orders'; only something that looks
		// like an array literal, or an explicit cast, is read as one.
		if explicit || (v.class == classUnknown && strings.HasPrefix(strings.TrimLeft(s, arraySpace), "{")) {
			return parseTextArray(s)
		}
		return []string{s}, nil
	}
	return nil, mismatch(v, t, explicit)
}

func toInteger(v value, t *typeInfo, explicit bool) (int64, *pgconn.PgError) {
	var i int64
	switch {
	case v.class == classInteger:
		i = v.v.(int64)
	case v.class == classUnknown || (explicit && v.class == classText):
		s := strings.Trim(v.v.(string), arraySpace)
		n, err := parseIntLiteral(s)
		if errors.Is(err, strconv.ErrRange) {
			return 0, newError(codeNumericValueOutOfRange, "value %q is out of range for type %s", s, t.Name)
		}
		if err != nil || s == "" {
			return 0, invalidInput(t, v.v.(string))
		}
		i = n
	case explicit && v.class == classNumeric:
		n, ok := roundNumeric(v.v.(string))
		if !ok {
			return 0, newError(codeNumericValueOutOfRange, "%s out of range", t.Name)
		}
		i = n
	case explicit && v.class == classBoolean:
		if v.v.(bool) {
			i = 1
		}
	default:
		return 0, mismatch(v, t, explicit)
	}
	if i < t.min || i > t.max {
		return 0, newError(codeNumericValueOutOfRange, "value %d is out of range for type %s", i, t.Name)
	}
	return i, nil
}

// roundNumeric rounds half away from zero, as numeric-to-integer casts do.
func roundNumeric(s string) (int64, bool) {
	s = strings.ReplaceAll(s, "_", "")
	// Rule out what cannot fit before big.Rat expands an exponent like
	// 1e999999999 into a number of that many digits.
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.Abs(f) >= 1e19 {
		return 0, false
	}
	r, ok := new(big.Rat).SetString(s)
	if !ok {
		return 0, false
	}
	num, den := new(big.Int).Set(r.Num()), r.Denom()
	neg := num.Sign() < 0
	num.Abs(num)
	q, m := new(big.Int).QuoRem(num, den, new(big.Int))
	if m.Lsh(m, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if neg {
		q.Neg(q)
	}
	if !q.IsInt64() {
		return 0, false
	}
	return q.Int64(), true
}

func toBoolean(v value, t *typeInfo, explicit bool) (bool, *pgconn.PgError) {
	switch {
	case v.class == classBoolean:
		return v.v.(bool), nil
	case v.class == classUnknown || (explicit && v.class == classText):
		b, ok := parseBool(v.v.(string))
		if !ok {
			return false, invalidInput(t, v.v.(string))
		}
		return b, nil
	case explicit && v.class == classInteger:
		return v.v.(int64) != 0, nil
	}
	return false, mismatch(v, t, explicit)
}

// parseBool accepts what Postgres' boolin does: true/false, yes/no, on/off,
// 1/0 and unambiguous prefixes, case-insensitively, around whitespace.
func parseBool(s string) (bool, bool) {
	s = strings.ToLower(strings.Trim(s, arraySpace))
	if s == "" {
		return false, false
	}
	switch s[0] {
	case 't':
		return true, strings.HasPrefix("true", s)
	case 'y':
		return true, strings.HasPrefix("yes", s)
	case 'f':
		return false, strings.HasPrefix("false", s)
	case 'n':
		return false, strings.HasPrefix("no", s)
	case 'o':
		if len(s) < 2 {
			return false, false
		}
		if strings.HasPrefix("on", s) {
			return true, true
		}
		return false, strings.HasPrefix("off", s)
	case '1':
		return true, s == "1"
	case '0':
		return false, s == "0"
	}
	return false, false
}

func toJSON(v value, t *typeInfo, explicit bool) (any, *pgconn.PgError) {
	switch {
	case v.class == classJSON:
		return v.v, nil
	case v.class == classUnknown || (explicit && v.class == classText):
		return parseJSON(t, v.v.(string))
	}
	return nil, mismatch(v, t, explicit)
}

// parseJSON decodes one JSON value with numbers kept exact (json.Number).
func parseJSON(t *typeInfo, s string) (any, *pgconn.PgError) {
	// jsonb's binary wire format is the text prefixed with version byte 1;
	// no JSON text starts with that byte, so stripping it is safe.
	s = strings.TrimPrefix(s, "\x01")
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var out any
	err := dec.Decode(&out)
	if err == nil {
		if _, tail := dec.Token(); tail != io.EOF {
			err = errors.New("unexpected data after the JSON value")
		}
	}
	if err != nil {
		e := newError(codeInvalidTextRepr, "invalid input syntax for type %s", t.Name)
		e.Detail = err.Error()
		return nil, e
	}
	return out, nil
}

// finalize turns a value already coerced to a parameter's type into the Go
// value Args promises for that type.
func finalize(v value, t *typeInfo) (any, *pgconn.PgError) {
	if v.null {
		return nil, nil
	}
	if t.class != classJSON {
		return v.v, nil
	}
	switch j := v.v.(type) {
	case nil:
		// A JSON null carries no options, same as SQL NULL.
		return nil, nil
	case map[string]any:
		return j, nil
	default:
		e := newError(codeInvalidParameterValue, "expected a JSON object, got %s", jsonKind(j))
		return nil, e
	}
}

func jsonKind(v any) string {
	switch v.(type) {
	case []any:
		return "an array"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	}
	return "a number"
}
