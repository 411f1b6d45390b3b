package lokiapi

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
)

// storeQuerier marks the errors of the store as storeError, so that a failed
// read answers 500 while every error the engine itself raises (a limit, a
// pipeline error) answers 400 with Loki's message.
type storeQuerier struct{ logs.Querier }

func storeErr(err error) error {
	if err == nil || errors.Is(err, logs.ErrInvalidQuery) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return &storeError{err}
}

func (s storeQuerier) Select(ctx context.Context, tenant string, p logs.SelectParams) (logs.Iterator, error) {
	it, err := s.Querier.Select(ctx, tenant, p)
	if err != nil {
		return nil, storeErr(err)
	}
	return storeIterator{it}, nil
}

func (s storeQuerier) Labels(ctx context.Context, tenant string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	v, err := s.Querier.Labels(ctx, tenant, start, end, ms)
	return v, storeErr(err)
}

func (s storeQuerier) LabelValues(ctx context.Context, tenant, name string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	v, err := s.Querier.LabelValues(ctx, tenant, name, start, end, ms)
	return v, storeErr(err)
}

func (s storeQuerier) Series(ctx context.Context, tenant string, start, end int64, ms []*labels.Matcher) ([]labels.Labels, error) {
	v, err := s.Querier.Series(ctx, tenant, start, end, ms)
	return v, storeErr(err)
}

func (s storeQuerier) Stats(ctx context.Context, tenant string, start, end int64, ms []*labels.Matcher) (logs.Stats, error) {
	v, err := s.Querier.Stats(ctx, tenant, start, end, ms)
	return v, storeErr(err)
}

func (s storeQuerier) Volume(ctx context.Context, tenant string, p logs.VolumeParams) ([]logs.StreamVolume, error) {
	v, err := s.Querier.Volume(ctx, tenant, p)
	return v, storeErr(err)
}

type storeIterator struct{ logs.Iterator }

func (it storeIterator) Err() error { return storeErr(it.Iterator.Err()) }
