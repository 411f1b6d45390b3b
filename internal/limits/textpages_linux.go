package limits

import (
	"bufio"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ReleaseBinaryPages asks the kernel to reclaim the pages of the running
// binary's code and read-only data that are mapped now (MADV_PAGEOUT), once
// start-up is over. Vispyr's binary is about 100 MB, with code it runs only
// at start-up (the AWS SDK's and Kubernetes' schema tables, flag and config
// parsing) and whole libraries a deployment may never call; and a kernel
// that reads files in large folios maps the binary 2 MB at a time, so some
// 55 MB of it were resident at idle against 19 MB that serving used again
// (bench/README.md, "memory"). The pages the process still runs come back
// on their next use; the rest stay on disk. Writable data is left alone:
// paging it out would mean swap.
//
// It returns how many bytes of mappings it covered. A kernel without
// MADV_PAGEOUT (before 5.4) refuses it (EINVAL) and nothing changes.
func ReleaseBinaryPages(logger *slog.Logger) (int64, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("release binary pages: %w", err)
	}
	regions, err := readOnlyMappings(exe)
	if err != nil {
		return 0, fmt.Errorf("release binary pages: %w", err)
	}
	var size int64
	for _, r := range regions {
		// The raw call: unix.Madvise takes a []byte, and these addresses
		// are no Go memory.
		if _, _, errno := unix.Syscall(unix.SYS_MADVISE, r.start, r.end-r.start, unix.MADV_PAGEOUT); errno != 0 {
			return size, fmt.Errorf("release binary pages: madvise %x-%x: %w", r.start, r.end, errno)
		}
		size += int64(r.end - r.start)
	}
	logger.Debug("released the binary's pages; those in use come back on their next use", "mapped_bytes", size, "regions", len(regions))
	return size, nil
}

type mapping struct{ start, end uintptr }

// readOnlyMappings lists this process's mappings of file path that are
// readable and not writable (code, read-only data), from /proc/self/maps.
func readOnlyMappings(path string) ([]mapping, error) {
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []mapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// address perms offset dev inode pathname
		fields := strings.Fields(sc.Text())
		if len(fields) < 6 || fields[5] != path || fields[1][0] != 'r' || fields[1][1] == 'w' {
			continue
		}
		lo, hi, ok := strings.Cut(fields[0], "-")
		if !ok {
			continue
		}
		start, err1 := strconv.ParseUint(lo, 16, 64)
		end, err2 := strconv.ParseUint(hi, 16, 64)
		if err1 != nil || err2 != nil || end <= start {
			continue
		}
		out = append(out, mapping{uintptr(start), uintptr(end)})
	}
	return out, sc.Err()
}
