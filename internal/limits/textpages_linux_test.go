package limits

import (
	"bufio"
	"errors"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A test binary's code and read-only data are resident once it runs; after
// ReleaseBinaryPages most of them are not, and the process runs on.
func TestReleaseBinaryPagesLowersRSS(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	before := residentOf(t, exe)
	mapped, err := ReleaseBinaryPages(slog.New(slog.DiscardHandler))
	if errors.Is(err, unix.EINVAL) {
		t.Skip("this kernel has no MADV_PAGEOUT:", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	after := residentOf(t, exe)
	t.Logf("binary's read-only mappings: %d KiB mapped, %d KiB resident before, %d KiB after", mapped>>10, before>>10, after>>10)
	if mapped == 0 {
		t.Fatal("found no read-only mapping of the binary")
	}
	if after*2 > before {
		t.Fatalf("resident %d KiB after, %d before: expected at most half", after>>10, before>>10)
	}
}

// residentOf sums the Rss of the process's read-only mappings of path,
// from /proc/self/smaps.
func residentOf(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var total int64
	in := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if strings.Contains(fields[0], "-") && len(fields) >= 5 { // a mapping's header
			in = len(fields) >= 6 && fields[5] == path && fields[1][0] == 'r' && fields[1][1] != 'w'
			continue
		}
		if in && fields[0] == "Rss:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return total
}
