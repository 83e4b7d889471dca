package sql

import (
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"
	pg_query "github.com/pganalyze/pg_query_go/v6"
)

// Args are a call's arguments by parameter name, one entry for every
// parameter, defaults filled in. Values are string (text), []string (text[]),
// bool (boolean), int64 (integer, bigint), map[string]any (jsonb, decoded with
// json.Number for numbers) or nil (NULL).
type Args map[string]any

// compileArgs matches the call's arguments to parameters with Postgres'
// rules, compiles them, evaluates the ones without $n so that a bad constant
// fails at Classify, and works out the $n types.
func (c *Call) compileArgs(nodes []*pg_query.Node) *pgconn.PgError {
	fn := c.Function
	c.args = make([]*expr, len(fn.Params))
	named, positional := false, 0
	for i, n := range nodes {
		idx, arg := i, n
		if na := n.GetNamedArgExpr(); na != nil {
			named = true
			idx, arg = fn.param(na.GetName()), na.GetArg()
			if idx < 0 {
				e := newError(codeUndefinedFunction, "function %s.%s() has no parameter named %q", Schema, fn.Name, na.GetName())
				e.Hint = "The function is " + fn.Signature() + "."
				return e
			}
			if c.args[idx] != nil {
				if idx < positional {
					return newError(codeUndefinedFunction, "function %s.%s(): argument %s is given both by position and by name", Schema, fn.Name, na.GetName())
				}
				return newError(codeSyntaxError, "argument name %q used more than once", na.GetName())
			}
		} else {
			if named {
				return newError(codeSyntaxError, "positional argument cannot follow named argument")
			}
			if i >= len(fn.Params) {
				e := newError(codeUndefinedFunction, "function %s.%s() takes at most %d arguments, got %d", Schema, fn.Name, len(fn.Params), len(nodes))
				e.Hint = "The function is " + fn.Signature() + "."
				return e
			}
			positional++
		}
		e, perr := compile(arg)
		if perr == errNotConstant {
			return notConstantError(fn)
		}
		if perr != nil {
			return argError(fn, fn.Params[idx].Name, perr)
		}
		c.args[idx] = e
	}
	for i, p := range fn.Params {
		if c.args[i] == nil && !p.HasDefault {
			e := newError(codeUndefinedFunction, "function %s.%s() requires argument %s", Schema, fn.Name, p.Name)
			e.Hint = "The function is " + fn.Signature() + "."
			return e
		}
	}
	if perr := c.resolveParams(); perr != nil {
		return perr
	}
	for i, e := range c.args {
		if e != nil && !e.hasParams() {
			if _, perr := fn.Params[i].bind(e, nil); perr != nil {
				return argError(fn, fn.Params[i].Name, perr)
			}
		}
	}
	return nil
}

// resolveParams gives each $n the type of what it fills, as Postgres infers
// parameter types from context; two different types is an error there too.
func (c *Call) resolveParams() *pgconn.PgError {
	seen := map[int]*typeInfo{}
	maxN := 0
	var perr *pgconn.PgError
	for i, e := range c.args {
		if e == nil {
			continue
		}
		e.visitParams(c.Function.Params[i].info, func(n int, t *typeInfo) {
			if prev, ok := seen[n]; ok && prev.OID != t.OID && perr == nil {
				perr = newError(codeAmbiguousParameter, "inconsistent types deduced for parameter $%d", n)
				perr.Detail = fmt.Sprintf("%s versus %s", prev.Name, t.Name)
			}
			seen[n] = t
			maxN = max(maxN, n)
		})
	}
	if perr != nil {
		return perr
	}
	c.paramOIDs = make([]uint32, maxN)
	for n, t := range seen {
		c.paramOIDs[n-1] = t.OID
	}
	return nil
}

// ParamOIDs are the types of $1..$n for ParameterDescription: the type of
// the parameter each one fills, or of the cast around it. A number the query
// skips is 0, unspecified.
func (c *Call) ParamOIDs() []uint32 {
	return append([]uint32(nil), c.paramOIDs...)
}

// Bind evaluates the arguments with the $n values, as the wire layer decoded
// them (string, []byte, int32, int64, bool, []string, nil, ...). Errors are
// *pgconn.PgError naming the argument at fault.
func (c *Call) Bind(params []any) (Args, error) {
	if len(params) != len(c.paramOIDs) {
		return nil, newError(codeProtocolViolation, "bind message supplies %d parameters, but prepared statement requires %d",
			len(params), len(c.paramOIDs))
	}
	args := make(Args, len(c.Function.Params))
	for i, p := range c.Function.Params {
		e := c.args[i]
		if e == nil {
			e = p.defaultArg
		}
		v, perr := p.bind(e, params)
		if perr != nil {
			return nil, argError(c.Function, p.Name, perr)
		}
		args[p.Name] = v
	}
	return args, nil
}

// bind evaluates e as an argument for p.
func (p *Param) bind(e *expr, params []any) (any, *pgconn.PgError) {
	if e == nil {
		return nil, nil
	}
	v, perr := e.eval(params)
	if perr == nil {
		v, perr = coerce(v, p.info, false)
	}
	if perr != nil {
		return nil, perr
	}
	return finalize(v, p.info)
}
