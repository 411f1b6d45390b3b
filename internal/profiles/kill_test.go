package profiles

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKill9 appends from a child process, SIGKILLs it mid-stream and checks every
// batch the child saw acknowledged is in the store after reopening.
func TestKill9(t *testing.T) {
	if dir := os.Getenv("VISPYR_PROFILES_KILL_CHILD"); dir != "" {
		killChild(dir)
		return
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9$")
	cmd.Env = append(os.Environ(), "VISPYR_PROFILES_KILL_CHILD="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := 0
	sc := bufio.NewScanner(out)
	for sc.Scan() && acked < 30 {
		if strings.HasPrefix(sc.Text(), "ack ") {
			acked++
		}
	}
	cmd.Process.Signal(syscall.SIGKILL) // the child is still appending
	cmd.Wait()
	if acked < 30 {
		t.Fatalf("child acknowledged only %d batches", acked)
	}
	s := mustOpen(t, Config{}, dir)
	defer s.Close()
	got := total(t, s, "killed")
	if got < int64(acked) {
		t.Fatalf("after kill -9: %d samples stored, but %d batches were acknowledged", got, acked)
	}
	t.Logf("acknowledged %d, recovered %d", acked, got)
}

func killChild(dir string) {
	s, err := Open(Config{}, dir, discard(), nil)
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(1)
	}
	for i := 0; ; i++ {
		b := testBatch("killed", time.Now(), map[string]int64{fmt.Sprintf("main;f%d", i%10): 1}, 0)
		if err := s.Append(context.Background(), b); err != nil {
			fmt.Println("append:", err)
			os.Exit(1)
		}
		fmt.Printf("ack %d\n", i)
		if i == 25 {
			go s.CutHead() // a flush racing the kill must not lose data either
		}
	}
}
