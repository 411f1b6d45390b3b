package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime/pprof"
	"sync"
	"time"
)

// profileLoad takes CPU profiles while load runs: of each vispyr process
// named in admins (name → admin URL) through its /debug/pprof, for d from
// the load's start (the handler cannot be stopped early, so d should not
// outlast the load), and of the senders (this process) for the whole load.
// Files are prefix-<name>.pprof; go tool pprof -top reads them.
func profileLoad(prefix string, d time.Duration, admins map[string]string, load func() error) error {
	var wg sync.WaitGroup
	errs := make([]error, len(admins))
	i := 0
	for name, admin := range admins {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = fetchProfile(admin, fmt.Sprintf("%s-%s.pprof", prefix, name), d)
		}(i)
		i++
	}
	f, err := os.Create(prefix + "-senders.pprof")
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	err = load()
	pprof.StopCPUProfile()
	wg.Wait()
	return errors.Join(append(errs, err, f.Close())...)
}

// fetchProfile saves a CPU profile of d from admin's /debug/pprof/profile.
func fetchProfile(admin, file string, d time.Duration) error {
	client := &http.Client{Timeout: d + time.Minute}
	resp, err := client.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", admin, max(int(d.Seconds()), 1)))
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("cpu profile: %s", resp.Status)
	}
	f, err := os.Create(file)
	if err != nil {
		return fmt.Errorf("cpu profile: %w", err)
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return fmt.Errorf("cpu profile: %w", err)
	}
	return f.Close()
}
