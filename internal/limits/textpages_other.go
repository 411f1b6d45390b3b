//go:build !linux

package limits

import "log/slog"

// ReleaseBinaryPages does nothing here: MADV_PAGEOUT is Linux's.
func ReleaseBinaryPages(*slog.Logger) (int64, error) { return 0, nil }
