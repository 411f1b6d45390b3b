package traceql

import (
	"fmt"
	"time"
)

// scalarFn evaluates a scalar expression over one spanset; it appends the
// aggregate values it computed to attrs (Tempo reports them, e.g. "count()").
type scalarFn func(c *traceCtx, s *sset, attrs *[]Attribute) value

func compileScalar(e ScalarExpr) (scalarFn, error) {
	switch e := e.(type) {
	case ScalarLiteral:
		v := e.V
		return func(*traceCtx, *sset, *[]Attribute) value { return v }, nil
	case *ScalarBinary:
		l, err := compileScalar(e.L)
		if err != nil {
			return nil, err
		}
		r, err := compileScalar(e.R)
		if err != nil {
			return nil, err
		}
		op := e.Op[0]
		return func(c *traceCtx, s *sset, attrs *[]Attribute) value {
			return arith(op, l(c, s, attrs), r(c, s, attrs))
		}, nil
	case *Aggregate:
		return compileAggregate(e)
	}
	return nil, fmt.Errorf("unsupported scalar expression %T", e)
}

func compileAggregate(a *Aggregate) (scalarFn, error) {
	key := a.String()
	if a.Fn == "count" {
		return func(_ *traceCtx, s *sset, attrs *[]Attribute) value {
			v := intValue(int64(len(s.spans)))
			*attrs = append(*attrs, Attribute{Key: key, Value: v.toPcommon()})
			return v
		}, nil
	}
	cf, err := compileField(a.X)
	if err != nil {
		return nil, err
	}
	x := cf.eval
	fn := a.Fn
	return func(c *traceCtx, s *sset, attrs *[]Attribute) value {
		v := aggregate(fn, x, c, s)
		if v.t != vNil {
			*attrs = append(*attrs, Attribute{Key: key, Value: v.toPcommon()})
		}
		return v
	}, nil
}

// aggregate folds a field over the spans of a spanset, skipping spans where it
// is missing or not numeric. Sums and averages of durations stay durations;
// the average of integers is a float. No numeric value gives nil.
func aggregate(fn string, x evalFn, c *traceCtx, s *sset) value {
	var acc value
	n := 0
	for _, i := range s.spans {
		v := x(c, &c.rows[i])
		if !v.isNumeric() {
			continue
		}
		if n == 0 {
			acc = v
			n++
			continue
		}
		n++
		switch fn {
		case "sum", "avg":
			acc = arith('+', acc, v)
		case "min":
			if o, ok := order(v, acc); ok && o < 0 {
				acc = v
			}
		case "max":
			if o, ok := order(v, acc); ok && o > 0 {
				acc = v
			}
		}
	}
	if n == 0 {
		return nilValue
	}
	if fn == "avg" {
		if acc.t == vDur {
			return durValue(time.Duration(float64(acc.n) / float64(n)))
		}
		return floatValue(acc.float() / float64(n))
	}
	return acc
}

func compileScalarFilter(f *ScalarFilter) (stageFn, error) {
	l, err := compileScalar(f.L)
	if err != nil {
		return nil, err
	}
	r, err := compileScalar(f.R)
	if err != nil {
		return nil, err
	}
	op := cmpOps[f.Op]
	return func(c *traceCtx, in []sset) []sset {
		var out []sset
		for i := range in {
			s := &in[i]
			attrs := append([]Attribute(nil), s.attrs...)
			if compare(op, l(c, s, &attrs), r(c, s, &attrs)) {
				out = append(out, sset{spans: s.spans, attrs: attrs})
			}
		}
		return out
	}, nil
}

// groupKey identifies a by() value; typed so that 1 and "1" are different groups.
type groupKey struct {
	t vtype
	n int64
	f float64
	s string
}

func keyOf(v value) groupKey {
	switch v.t {
	case vStr:
		return groupKey{t: vStr, s: v.s}
	case vArr:
		return groupKey{t: vArr, s: v.text()}
	}
	return groupKey{t: v.t, n: v.n, f: v.f}
}

func compileBy(b *ByStage) (stageFn, error) {
	cf, err := compileField(b.X)
	if err != nil {
		return nil, err
	}
	x := cf.eval
	key := b.String()
	return func(c *traceCtx, in []sset) []sset {
		var out []sset
		for _, s := range in {
			index := map[groupKey]int{}
			first := len(out)
			for _, i := range s.spans {
				v := x(c, &c.rows[i])
				k := keyOf(v)
				g, ok := index[k]
				if !ok {
					g = len(out)
					index[k] = g
					attrs := append(append([]Attribute(nil), s.attrs...), Attribute{Key: key, Value: v.toPcommon()})
					out = append(out, sset{attrs: attrs})
				}
				out[g].spans = append(out[g].spans, i)
			}
			_ = first
		}
		return out
	}, nil
}
