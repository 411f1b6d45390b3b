package main

import (
	"path/filepath"
	"strings"

	"github.com/vispyr/vispyr/internal/diskguard"
)

// ballastGroup is where diskGroup puts the disk guard's ballast: space held
// back so that writes can finish when the disk fills, not data.
const ballastGroup = "disk-guard reserve ballast"

// diskGroup names the directory (two levels deep) a data file is under, with
// Prometheus's ULID block directories counted together.
func diskGroup(rel string) string {
	if rel == diskguard.BallastName {
		return ballastGroup + "/"
	}
	top := filepath.Dir(rel)
	if el := strings.Split(top, string(filepath.Separator)); len(el) > 2 {
		top = filepath.Join(el[:2]...)
	}
	if b := filepath.Base(top); len(b) == 26 && strings.ToUpper(b) == b {
		top = filepath.Join(filepath.Dir(top), "<blocks>")
	}
	return top + "/"
}
