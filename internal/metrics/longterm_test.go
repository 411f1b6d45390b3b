package metrics

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/fileutil"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/pipeline"
)

func init() {
	// The TSDB drops the blocks the long-term tier replaced at its next
	// block reload: every second here, so the tests need not wait a minute.
	blockReloadInterval = time.Second
}

const (
	ltHour  = int64(time.Hour / time.Millisecond)
	ltStart = int64(1_700_006_400_000) // a UTC midnight
	ltSpan  = 3 * 24 * ltHour
)

// openLongTerm opens a Storage on dir, with the long-term tier on or off.
func openLongTerm(t *testing.T, dir string, enabled bool) *Storage {
	t.Helper()
	cfg := config.Default()
	cfg.Metrics.Retention = 10 * 365 * 24 * time.Hour
	cfg.Metrics.LongTerm = config.LongTerm{Enabled: enabled, After: 6 * time.Hour}
	cfg.Metrics.Head = testHead
	s, err := Open(cfg.Metrics, cfg.Limits, dir, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fillThreeDays writes three days of 15 s samples of counters and of a
// gauge that cycles through special values, and cuts the TSDB's blocks.
func fillThreeDays(t *testing.T, s *Storage) {
	t.Helper()
	ctx := context.Background()
	stale := math.Float64frombits(value.StaleNaN)
	for ts := ltStart; ts < ltStart+ltSpan; ts += 15_000 {
		app := s.Appender(ctx)
		for i := 0; i < 8; i++ {
			ls := labels.FromStrings("__name__", "requests_total", "job", []string{"api", "web"}[i%2], "instance", strconv.Itoa(i))
			if _, err := app.Append(0, ls, ts+int64(i), float64((ts-ltStart)/15_000*int64(i+1))+0.5*float64(i%3)); err != nil {
				t.Fatal(err)
			}
		}
		g := []float64{0.25, -3.5, math.NaN(), 12, stale, 1e300, math.Inf(-1), 7}[(ts/15_000)%8]
		if _, err := app.Append(0, labels.FromStrings("__name__", "odd_gauge", "job", "batch"), ts, g); err != nil {
			t.Fatal(err)
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	compactHeads(t, s)
}

// compactHeads writes what the TSDB's head and the own head (if any) hold
// of ranges due into blocks, as the store's minute's and ten seconds' runs
// would.
func compactHeads(t *testing.T, s *Storage) {
	t.Helper()
	ctx := context.Background()
	if err := s.DB().Compact(ctx); err != nil {
		t.Fatal(err)
	}
	if s.def.own == nil {
		return
	}
	c, err := tsdb.NewLeveledCompactor(ctx, nil, s.logger, []int64{s.tsdbOpts().MinBlockDuration}, chunkenc.NewPool(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.def.compactOwnHead(ctx, c, s.logger); err != nil {
		t.Fatal(err)
	}
}

// queries are answered by both stores; each answer is compared.
var ltQueries = []string{
	`sum by (job) (rate(requests_total[5m]))`,
	`requests_total{instance="3"}`,
	`odd_gauge`,
	`max_over_time(odd_gauge[1h])`,
	`count({__name__=~".+"})`,
	`topk(2, increase(requests_total[2h]))`,
}

func apiAnswers(t *testing.T, s *Storage) []string {
	t.Helper()
	cfg := config.Default()
	logger := slog.New(slog.DiscardHandler)
	srv := httptest.NewServer(s.NewAPI(APIOptions{Metrics: cfg.Metrics}, logger, prometheus.NewRegistry()))
	defer srv.Close()
	start, end := time.UnixMilli(ltStart).Add(time.Hour), time.UnixMilli(ltStart+ltSpan)
	var out []string
	for _, q := range ltQueries {
		v := url.Values{"query": {q}, "start": {strconv.FormatInt(start.Unix(), 10)},
			"end": {strconv.FormatInt(end.Unix(), 10)}, "step": {"600"}}
		out = append(out, httpGet(t, srv.URL+"/api/v1/query_range?"+v.Encode()))
	}
	for _, path := range []string{"/api/v1/label/instance/values", "/api/v1/labels", "/api/v1/series?match[]=odd_gauge"} {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		out = append(out, httpGet(t, srv.URL+path+sep+"start="+strconv.FormatInt(start.Unix(), 10)+"&end="+strconv.FormatInt(start.Add(2*time.Hour).Unix(), 10)))
	}
	return out
}

func httpGet(t *testing.T, u string) string {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	return string(body)
}

// waitMoved waits until the TSDB has dropped every block the long-term tier
// replaced (its next block reload), and their files are gone: the reload
// deletes them after it stops serving them, so until then the dir's size
// still counts them.
func waitMoved(t *testing.T, s *Storage) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Minute); ; time.Sleep(100 * time.Millisecond) {
		left := 0
		for _, b := range s.DB().Blocks() {
			if s.def.lt.Replaces(b.Meta().ULID) {
				left++
			}
		}
		if deleting, _ := filepath.Glob(filepath.Join(s.DB().Dir(), "*.tmp-for-deletion")); len(deleting) > 0 {
			left++
		}
		if left == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d replaced TSDB blocks still loaded", left)
		}
	}
}

func TestLongTermTierAnswersAsTheTSDB(t *testing.T) {
	plain := openLongTerm(t, t.TempDir(), false)
	defer plain.Close()
	fillThreeDays(t, plain)
	want := apiAnswers(t, plain)

	dir := t.TempDir()
	s := openLongTerm(t, dir, true)
	fillThreeDays(t, s)
	s.moveOld(context.Background(), s.def)
	metas := s.def.lt.Metas()
	// The newest sample is at the end of day 3; days 1 and 2 ended more than
	// 6 h before it.
	if len(metas) != 2 {
		t.Fatalf("%d long-term blocks, want one per day for 2 days: %+v", len(metas), metas)
	}
	waitMoved(t, s)
	if mint := s.DB().Blocks()[0].Meta().MinTime; mint < metas[1].MaxTime {
		t.Fatalf("TSDB still holds samples from %d, long-term up to %d", mint, metas[1].MaxTime)
	}
	if s.MinTime(pipeline.DefaultTenant) != ltStart {
		t.Errorf("MinTime = %d, want the long-term tier's first sample %d", s.MinTime(pipeline.DefaultTenant), ltStart)
	}
	got := apiAnswers(t, s)
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("answer %d differs across tiers:\nlong-term: %.400s\nTSDB only: %.400s", i, got[i], want[i])
		}
	}

	// After a restart, from disk.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = openLongTerm(t, dir, true)
	defer s.Close()
	if len(s.def.lt.Metas()) != 2 {
		t.Fatalf("reopened with %d long-term blocks", len(s.def.lt.Metas()))
	}
	for i, a := range apiAnswers(t, s) {
		if a != want[i] {
			t.Errorf("answer %d differs after restart", i)
		}
	}
}

func TestLongTermRetentionDropsOldDays(t *testing.T) {
	s := openLongTerm(t, t.TempDir(), true)
	defer s.Close()
	fillThreeDays(t, s)
	s.moveOld(context.Background(), s.def)
	s.cfg.Retention = 36 * time.Hour // day 1 ended 48 h before the newest sample
	s.longTermRetention(s.def)
	metas := s.def.lt.Metas()
	if len(metas) != 1 || metas[0].MinTime < ltStart+24*ltHour {
		t.Fatalf("after retention: %+v, want day 2 only", metas)
	}
}

// Size retention counts both tiers and deletes long-term days, oldest
// first, until they fit; a deleted day's disk comes back once the query
// reading it ends (no file left, none still mapped), so the tenant's disk
// is then within 110% of the data retained.
func TestLongTermRetentionBySizeGivesTheDiskBack(t *testing.T) {
	s := openLongTerm(t, t.TempDir(), true)
	defer s.Close()
	// Enough series that the files are large beside the file system's
	// 4 KiB blocks, as a real tenant's are.
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(1, 2))
	for ts := ltStart; ts < ltStart+ltSpan; ts += 60_000 {
		app := s.Appender(ctx)
		for i := 0; i < 300; i++ {
			if _, err := app.Append(0, labels.FromStrings("__name__", "load", "cpu", strconv.Itoa(i)), ts, float64(rnd.IntN(10000))/100); err != nil {
				t.Fatal(err)
			}
		}
		if err := app.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	compactHeads(t, s)
	s.moveOld(ctx, s.def)
	waitMoved(t, s)
	ltDir := filepath.Join(s.DB().Dir(), longTermDir)
	metas := s.def.lt.Metas()
	if len(metas) != 2 {
		t.Fatalf("%d long-term blocks, want 2", len(metas))
	}
	oldest := filepath.Join(ltDir, metas[0].ULID.String())
	newestBytes, _ := fileutil.DirSize(filepath.Join(ltDir, metas[1].ULID.String()))
	all, _ := fileutil.DirSize(s.DB().Dir())
	tsdbBytes := all - s.def.lt.Size()
	retained := tsdbBytes + newestBytes
	s.cfg.RetentionSize = retained + newestBytes/2 // room for one day, not two

	q := s.def.lt.Querier(metas[0].MinTime, metas[0].MaxTime) // a query reading the oldest day
	s.longTermRetention(s.def)
	if m := s.def.lt.Metas(); len(m) != 1 || m[0].ULID != metas[1].ULID {
		t.Fatalf("after size retention: %+v, want the newest day only", m)
	}
	if _, err := os.Stat(oldest); err != nil {
		t.Fatalf("the deleted day went while a query read it: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(oldest); os.IsNotExist(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deleted day's files are still there after its query ended")
		}
	}
	if maps, err := os.ReadFile("/proc/self/maps"); err == nil && strings.Contains(string(maps), metas[0].ULID.String()) {
		t.Fatal("the deleted day's files are still mapped: their disk is not given back")
	}
	disk := allocated(t, s.DB().Dir())
	t.Logf("disk %d bytes, retained data %d, retention size %d", disk, retained, s.cfg.RetentionSize)
	if disk*100 > retained*110 {
		t.Fatalf("disk %d bytes is more than 110%% of the %d bytes retained", disk, retained)
	}
}

// allocated is the disk dir's files take, as du counts it.
func allocated(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if os.IsNotExist(err) {
			return nil // deleted while walked (a block the TSDB replaced)
		}
		if err != nil {
			return err
		}
		if st, ok := fi.Sys().(*syscall.Stat_t); ok && !fi.IsDir() {
			n += st.Blocks * 512
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A child process moving blocks is killed with SIGKILL at a range of
// moments; every time, the store it leaves answers exactly as before.
func TestLongTermMoveSurvivesKill9(t *testing.T) {
	if dir := os.Getenv("VISPYR_LONGTERM_CHILD"); dir != "" {
		s := openLongTerm(t, dir, true)
		fmt.Println("moving")
		s.moveOld(context.Background(), s.def)
		waitMoved(t, s)
		fmt.Println("moved")
		select {} // wait for the kill
	}
	src := t.TempDir()
	s := openLongTerm(t, src, false)
	fillThreeDays(t, s)
	want := apiAnswers(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for _, delay := range []time.Duration{0, 20 * time.Millisecond, 80 * time.Millisecond, 300 * time.Millisecond, -1} {
		dir := t.TempDir()
		if err := os.CopyFS(dir, os.DirFS(src)); err != nil {
			t.Fatal(err)
		}
		killChild(t, dir, delay)
		s := openLongTerm(t, dir, true)
		got := apiAnswers(t, s)
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("killed after %v: answer %d differs", delay, i)
			}
		}
		// The reopened store resumes moving; once closed, nothing is half done.
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		entries, _ := os.ReadDir(filepath.Join(dir, "metrics", longTermDir))
		for _, e := range entries {
			if strings.HasSuffix(e.Name(), ".tmp") {
				t.Errorf("killed after %v: %s left behind", delay, e.Name())
			}
		}
	}
}

// killChild runs the move in a child and kills it delay after it starts
// moving (delay < 0: once it is done).
func killChild(t *testing.T, dir string, delay time.Duration) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestLongTermMoveSurvivesKill9$")
	cmd.Env = append(os.Environ(), "VISPYR_LONGTERM_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wait := "moving"
	if delay < 0 {
		wait, delay = "moved", 0
	}
	buf := make([]byte, 0, 64)
	for !strings.Contains(string(buf), wait) {
		var b [64]byte
		n, err := out.Read(b[:])
		if err != nil {
			t.Fatalf("child ended before %q: %v (%s)", wait, err, buf)
		}
		buf = append(buf, b[:n]...)
	}
	time.Sleep(delay)
	_ = cmd.Process.Signal(syscall.SIGKILL)
	_ = cmd.Wait()
}
