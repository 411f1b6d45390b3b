package logql

import (
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
)

// LinePipeline runs a log query's whole pipeline, line filters included, on
// entries no store has filtered: the live tail's pushed lines.
type LinePipeline struct{ p Pipeline }

// NewLinePipeline compiles every stage of a log query.
func NewLinePipeline(stages []Stage) (*LinePipeline, error) {
	lp := &LinePipeline{}
	for _, s := range stages {
		fn, err := compileStage(s)
		if err != nil {
			return nil, err
		}
		lp.p.stages = append(lp.p.stages, fn)
	}
	return lp, nil
}

// Process runs the pipeline on one entry of stream; false means dropped.
func (lp *LinePipeline) Process(stream labels.Labels, e logs.Entry) (Row, bool) {
	st, ok := lp.p.process(stream, e)
	if !ok {
		return Row{}, false
	}
	return Row{
		Stream: st.labels.labels(int(CatStream)), Metadata: st.labels.labels(int(CatMetadata)),
		Parsed: st.labels.labels(int(CatParsed)), Timestamp: st.ts, Line: st.line,
	}, true
}
