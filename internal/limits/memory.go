package limits

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// MemoryShare is the part of the machine's (or cgroup's) memory Vispyr takes
// as its ceiling when limits.max_memory_bytes is not set: the rest is left to
// the page cache, which the stores read through, and to the kernel.
const MemoryShare = 0.7

// DefaultMemoryLimit is MemoryShare of the memory available to this process:
// the cgroup v2 memory.max, else the cgroup v1 limit, else MemTotal.
func DefaultMemoryLimit() int64 {
	total := memTotal()
	if n := cgroupLimit(); n > 0 && (total == 0 || n < total) {
		total = n
	}
	return int64(float64(total) * MemoryShare)
}

func cgroupLimit() int64 {
	for _, path := range []string{
		"/sys/fs/cgroup/memory.max",                   // v2
		"/sys/fs/cgroup/memory/memory.limit_in_bytes", // v1
	} {
		b, err := os.ReadFile(path)
		if err != nil {
			continue
		}
		s := strings.TrimSpace(string(b))
		if s == "max" {
			return 0
		}
		// v1 reports "no limit" as a huge number; the MemTotal check catches it.
		if n, err := strconv.ParseInt(s, 10, 64); err == nil && n > 0 {
			return n
		}
	}
	return 0
}

func memTotal() int64 {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "MemTotal:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb << 10
				}
			}
		}
	}
	return 0
}
