package main

import (
	"errors"
	"fmt"
	"os"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/vispyr/vispyr/bench/internal/proc"
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
			errs[i] = proc.CPUProfile(admin, fmt.Sprintf("%s-%s.pprof", prefix, name), d)
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
