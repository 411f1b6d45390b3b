// Package deploy holds what every deploy target shares: a plan of steps shown
// before anything changes, the confirmation prompt, progress as each step runs,
// and the credentials and certificates a new installation gets.
package deploy

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
)

// Step is one change to a target, described before it is made.
type Step struct {
	// Title says what the step changes, in the plan and in the progress lines.
	Title string
	Run   func(ctx context.Context) error
}

// Plan is what a deploy or destroy will do. Nothing is changed while it is built.
type Plan struct {
	Action string // "deploy" or "destroy"
	Target string // user@host, aws:region, ...
	Steps  []Step
	// Notes are facts the user should know before saying yes (what stays, what
	// could not be done on this host).
	Notes []string
}

// Print writes the plan for the user to read.
func (p Plan) Print(w io.Writer) {
	if len(p.Steps) == 0 {
		fmt.Fprintf(w, "Plan: %s %s: nothing to do.\n", p.Action, p.Target)
	} else {
		fmt.Fprintf(w, "Plan: %s %s, %d steps:\n", p.Action, p.Target, len(p.Steps))
		for i, s := range p.Steps {
			fmt.Fprintf(w, "  %2d. %s\n", i+1, s.Title)
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
}

// ErrDeclined is returned when the user did not confirm the plan.
var ErrDeclined = errors.New("not confirmed: nothing was changed")

// Confirm asks whether to go on; only "y" or "yes" does. yes skips the question
// (for scripts). An empty plan needs no confirmation.
func Confirm(p Plan, in io.Reader, out io.Writer, yes bool) error {
	if yes || len(p.Steps) == 0 {
		return nil
	}
	fmt.Fprint(out, "Proceed? [y/N] ")
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(out)
		return ErrDeclined
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return nil
	}
	return ErrDeclined
}

// Execute runs the steps in order, printing each as it starts and how it ended.
// It stops at the first failure; the steps before it stay done, so running the
// same command again continues from where the host now is.
func Execute(ctx context.Context, p Plan, out io.Writer) error {
	for i, s := range p.Steps {
		fmt.Fprintf(out, "[%d/%d] %s ... ", i+1, len(p.Steps), s.Title)
		start := time.Now()
		if err := s.Run(ctx); err != nil {
			fmt.Fprintln(out, "failed")
			return fmt.Errorf("%s: %w", s.Title, err)
		}
		fmt.Fprintf(out, "done (%s)\n", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
