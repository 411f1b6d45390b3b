package lokiapi

import (
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/common/model"

	"github.com/vispyr/vispyr/internal/logs"
)

// maxPoints is Loki's bound on the steps of one range query.
const maxPoints = 11000

// Default look-backs when a request gives no start: Loki's.
const (
	defaultQuerySince  = time.Hour
	defaultLabelsSince = 6 * time.Hour
	defaultLimit       = 100
)

// form parses the query string and a form-encoded POST body.
func form(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return errBadRequest("%s", err.Error())
	}
	return nil
}

// parseTime reads a timestamp as Loki does: a decimal with a dot is Unix
// seconds, an integer of up to 10 digits is Unix seconds and a longer one
// Unix nanoseconds, otherwise RFC3339.
func parseTime(name, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	if strings.Contains(v, ".") {
		if f, err := strconv.ParseFloat(v, 64); err == nil && !math.IsNaN(f) && !math.IsInf(f, 0) && math.Abs(f) < 1e12 {
			s, frac := math.Modf(f)
			return time.Unix(int64(s), int64(math.Round(frac*1e6))*1e3), nil
		}
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		digits := len(strings.TrimPrefix(v, "-"))
		if digits <= 10 {
			return time.Unix(n, 0), nil
		}
		return time.Unix(0, n), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, errBadRequest("invalid %s: cannot parse %q to a valid timestamp", name, v)
}

// parseDuration reads a step or interval: a number of seconds (decimals
// allowed) or a duration such as 15s or 1m30s.
func parseDuration(name, v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		d := f * float64(time.Second)
		if math.IsNaN(d) || d >= math.MaxInt64 || d <= math.MinInt64 {
			return 0, errBadRequest("invalid %s: cannot parse %q to a valid duration. It overflows int64", name, v)
		}
		return time.Duration(d), nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		return d, nil
	}
	if d, err := model.ParseDuration(v); err == nil {
		return time.Duration(d), nil
	}
	return 0, errBadRequest("invalid %s: cannot parse %q to a valid duration", name, v)
}

// timeRange reads start, end (and since) with the given default look-back.
func timeRange(r *http.Request, since time.Duration) (start, end time.Time, err error) {
	end, err = parseTime("end", r.Form.Get("end"), time.Now())
	if err != nil {
		return
	}
	if s := r.Form.Get("since"); s != "" {
		if since, err = parseDuration("since", s); err != nil {
			return
		}
	}
	start, err = parseTime("start", r.Form.Get("start"), end.Add(-since))
	if err != nil {
		return
	}
	if end.Before(start) {
		err = errBadRequest("end timestamp must not be before or equal to start time")
	}
	return
}

// checkLength refuses a range longer than Loki's max_query_length.
func (a *API) checkLength(start, end time.Time) error {
	if l := end.Sub(start); a.lim.MaxLength > 0 && l > a.lim.MaxLength {
		return errBadRequest("the query time range exceeds the limit (query length: %s, limit: %s)",
			model.Duration(l), model.Duration(a.lim.MaxLength))
	}
	return nil
}

func (a *API) parseLimit(r *http.Request) (int, error) {
	v := r.Form.Get("limit")
	if v == "" {
		return defaultLimit, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		return 0, errBadRequest("invalid limit: cannot parse %q", v)
	}
	if n <= 0 {
		return 0, errBadRequest("limit must be a positive value")
	}
	if n > a.lim.MaxEntries {
		return 0, errBadRequest("max entries limit per query exceeded, limit > max_entries_limit_per_query (%d > %d)", n, a.lim.MaxEntries)
	}
	return n, nil
}

func parseDirection(v string) (logs.Direction, error) {
	switch strings.ToLower(v) {
	case "", "backward":
		return logs.Backward, nil
	case "forward":
		return logs.Forward, nil
	}
	return 0, errBadRequest("invalid direction '%s'", v)
}

// defaultStep is Loki's: about 250 points over the range, at least 1s.
func defaultStep(start, end time.Time) time.Duration {
	return time.Duration(max(math.Floor(end.Sub(start).Seconds()/250), 1)) * time.Second
}

// parseStep reads step, refusing one that would make more than Loki's 11,000
// points per series before any work is done.
func parseStep(r *http.Request, start, end time.Time) (time.Duration, error) {
	v := r.Form.Get("step")
	if v == "" {
		return defaultStep(start, end), nil
	}
	step, err := parseDuration("step", v)
	if err != nil {
		return 0, err
	}
	if step <= 0 {
		return 0, errBadRequest("zero or negative query resolution step widths are not accepted. Try a positive integer")
	}
	if end.Sub(start)/step > maxPoints {
		return 0, errBadRequest("exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)")
	}
	return step, nil
}
