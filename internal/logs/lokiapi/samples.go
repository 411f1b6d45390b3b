package lokiapi

import (
	"context"

	"github.com/vispyr/vispyr/internal/logs"
)

// SelectSamples passes the store's count-only read through storeQuerier, so
// that rate and count_over_time queries read timestamps, not lines.
func (s storeQuerier) SelectSamples(ctx context.Context, tenant string, p logs.SelectParams, fn logs.SampleFunc) error {
	sq, ok := s.Querier.(logs.SampleQuerier)
	if !ok {
		return logs.ErrEntriesOnly
	}
	return storeErr(sq.SelectSamples(ctx, tenant, p, fn))
}
