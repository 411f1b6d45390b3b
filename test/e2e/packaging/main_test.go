// Package packaging checks what ships around the binary: the image, the compose
// file, the Helm chart and the README's examples, each against a real `vispyr`.
package packaging

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

func repoFile(t *testing.T, rel string) []byte {
	t.Helper()
	root, err := harness.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
