package traceql

// SpanLocal reports whether the query decides each span on its own: whether
// a span matches (or, for metrics, how it is counted) depends only on the
// span, its events, links, resource and scope, never on other spans of the
// trace. That holds for spanset filters, || between them, select(), and
// metrics functions over them, as long as they do not use trace-level
// intrinsics (rootName, rootServiceName, traceDuration, nestedSet*,
// span:childCount), structural operators, && between spansets, aggregates,
// by() or compare().
//
// For such queries EvalTrace over any part of a trace returns exactly the
// matching spans of that part, so a store may evaluate blocks holding
// partial traces independently and merge the spans per trace ID; other
// queries need the whole trace.
func (q *Query) SpanLocal() bool {
	if q.math != nil {
		local := true
		q.math.leaves(func(pl *Pipeline) { local = local && stageLocal(pl) })
		return local
	}
	return stageLocal(q.pipeline)
}

var traceLevelIntrinsics = map[string]bool{
	"rootName": true, "rootServiceName": true, "traceDuration": true,
	"nestedSetLeft": true, "nestedSetRight": true, "nestedSetParent": true, "span:childCount": true,
}

func fieldLocal(e FieldExpr) bool {
	local := true
	walkField(e, func(f FieldExpr) {
		if i, ok := f.(IntrinsicRef); ok && traceLevelIntrinsics[i.Name] {
			local = false
		}
	})
	return local
}

func stageLocal(st Stage) bool {
	switch st := st.(type) {
	case *Pipeline:
		for _, s := range st.Stages {
			if !stageLocal(s) {
				return false
			}
		}
		return true
	case *SpansetFilter:
		return st.Expr == nil || fieldLocal(st.Expr)
	case *SpansetOp:
		return st.Op == "||" && stageLocal(st.L) && stageLocal(st.R)
	case *SelectStage:
		return true
	case *MetricsStage:
		if st.Fn == "compare" || st.Attr != nil && !fieldLocal(st.Attr) {
			return false
		}
		for _, b := range st.By {
			if !fieldLocal(b) {
				return false
			}
		}
		return true
	}
	return false
}
